#include "support/catch.hpp"

#include <filesystem>
#include <fstream>

#include "hamlet/core/error.hpp"
#include "hamlet/data/dataset.hpp"
#include "hamlet/data/digits.hpp"
#include "support/data_files.hpp"
#include "support/test_support.hpp"

using namespace hamlet;
using Catch::Contains;

TEST_CASE("the 8x8 digits of Debian's scikit-learn load with the published counts and the first image") {
  const auto path = test::data_dir() / "digits" / "digits.csv.gz";
  if (!test::have_data(path)) return;
  const data::Dataset d = data::load_dataset("digits", (test::data_dir() / "digits").string());
  REQUIRE(d.images.sizes() == at::IntArrayRef({1797, 64}));
  CHECK(d.name == "digits");
  const at::Tensor counts = at::bincount(d.labels, {}, 10);
  CHECK(counts.min().item<int64_t>() == 174);
  CHECK(counts.max().item<int64_t>() == 183);
  CHECK(d.images.min().item<float>() == 0.0f);
  CHECK(d.images.max().item<float>() == 1.0f);
  // The first image of the UCI optdigits test part: a zero whose top row is 0 0 5 13 9 1 0 0 (of 16).
  const at::Tensor top = d.images[0].slice(0, 0, 8) * 16;
  CHECK(at::equal(top, at::tensor({0.f, 0.f, 5.f, 13.f, 9.f, 1.f, 0.f, 0.f})));
  CHECK(d.labels[0].item<int64_t>() == 0);

}

TEST_CASE("a damaged digits CSV is refused with the file and the line") {
  test::TempDir dir;
  const auto write = [&](const std::string& text) { return test::write_text(dir / "d.csv", text); };
  std::string row;
  for (int i = 0; i < 64; ++i) row += std::to_string(i % 17) + ",";
  CHECK(data::load_digits_csv(write(row + "3\n" + row + "4\n")).size() == 2);
  CHECK_THROWS_WITH(data::load_digits_csv(write(row + "3\n" + row + "\n")), Contains("line 2: 64 values"));
  CHECK_THROWS_WITH(data::load_digits_csv(write(row + "12\n")), Contains("label 12 outside 0..9"));
  CHECK_THROWS_WITH(data::load_digits_csv(write("17," + row.substr(2) + "1\n")), Contains("pixel 0 = 17"));
  CHECK_THROWS_WITH(data::load_digits_csv(write(row + "x\n")), Contains("line 1: a value that is not an integer"));
  CHECK_THROWS_WITH(data::load_digits_csv(write("")), Contains("holds no rows"));
  CHECK_THROWS_WITH(data::load_digits_csv((dir / "missing.csv.gz").string()), Contains("cannot open"));
}
