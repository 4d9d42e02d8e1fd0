#include "support/catch.hpp"

#include <filesystem>
#include <fstream>

#include "hamlet/core/error.hpp"
#include "hamlet/data/breast_cancer.hpp"
#include "support/data_files.hpp"
#include "support/test_support.hpp"

using namespace hamlet;
using Catch::Contains;

TEST_CASE("the breast-cancer table of Debian's scikit-learn loads with the published counts and known rows") {
  const auto dir = test::data_dir() / "breast_cancer";
  if (!test::have_data(dir / "breast_cancer.csv")) return;
  const data::TabularDataset d = data::load_breast_cancer(dir.string());
  REQUIRE(d.features.sizes() == at::IntArrayRef({569, 30}));
  REQUIRE(d.labels.sizes() == at::IntArrayRef({569}));
  CHECK(d.features.scalar_type() == at::kDouble);
  CHECK(d.class_names == std::vector<std::string>{"malignant", "benign"});
  // docs/shared TASKS.md §1: 212 malignant (label 0), 357 benign (label 1).
  const at::Tensor counts = at::bincount(d.labels, {}, 2);
  CHECK(counts[0].item<int64_t>() == 212);
  CHECK(counts[1].item<int64_t>() == 357);
  // First row (mean radius 17.99, mean texture 10.38, ..., worst fractal dimension 0.1189), malignant.
  CHECK(d.features[0][0].item<double>() == 17.99);
  CHECK(d.features[0][1].item<double>() == 10.38);
  CHECK(d.features[0][3].item<double>() == 1001.0);
  CHECK(d.features[0][29].item<double>() == 0.1189);
  CHECK(d.labels[0].item<int64_t>() == 0);
  // Second row starts 20.57, 17.77; the last row is a benign case with mean radius 7.76 and worst area 268.6.
  CHECK(d.features[1][0].item<double>() == 20.57);
  CHECK(d.features[568][0].item<double>() == 7.76);
  CHECK(d.features[568][23].item<double>() == 268.6);
  CHECK(d.labels[568].item<int64_t>() == 1);
  // sklearn's load_breast_cancer().data.max() is worst area 4254.
  CHECK(d.features.max().item<double>() == 4254.0);
}

TEST_CASE("a damaged table CSV is refused with the file and the line") {
  test::TempDir dir;
  const auto load = [&](const std::string& text) {
    return data::load_sklearn_table_csv(test::write_text(dir / "t.csv", text), "t");
  };
  const auto ok = load("2,3,a,b\n1,2,3,0\n4.5,5e-1,6,1\n");
  CHECK(ok.size() == 2);
  CHECK(ok.features[1][1].item<double>() == 0.5);
  CHECK(ok.labels[1].item<int64_t>() == 1);
  CHECK_THROWS_WITH(load("2,3,a,b\n1,2,3,0\n"), Contains("announces 2 rows, the file holds 1"));
  CHECK_THROWS_WITH(load("1,3,a,b\n1,2,0\n"), Contains("line 2: 3 values (expected 4"));
  CHECK_THROWS_WITH(load("1,3,a,b\n1,x,3,0\n"), Contains("feature 1 'x' is not a finite number"));
  CHECK_THROWS_WITH(load("1,3,a,b\n1,2,3,2\n"), Contains("label '2' is not an integer in 0..1"));
  CHECK_THROWS_WITH(load("1,3,a,b\n1,2,3,\n"), Contains("label '' is not an integer"));
  CHECK_THROWS_WITH(load("569,30\n"), Contains("line 1: expected a header"));
  CHECK_THROWS_WITH(load(""), Contains("empty file"));
  CHECK_THROWS_WITH(data::load_breast_cancer((dir / "nowhere").string()), Contains("scripts/fetch_data.sh"));
}
