#include "support/catch.hpp"

#include <filesystem>

#include "hamlet/core/error.hpp"
#include "hamlet/io/h5.hpp"
#include "support/test_support.hpp"

using namespace hamlet;

TEST_CASE("HDF5 run files round-trip datasets and attributes and appear only on commit") {
  test::TempDir dir;
  const std::string path = (dir / "run.h5").string();
  const at::Tensor loss = at::rand({4, 7}, at::kDouble);
  const at::Tensor counts = at::arange(5, at::kLong);
  {
    io::H5Writer w(path);
    w.write("/methods/adam/loss", loss);
    w.write("/methods/adam/final_loss", loss.select(1, 6).to(at::kFloat));
    w.write("/counts", counts);
    w.write_strings("/method_names", {"adam", "sgd"});
    w.set_attribute("/", "command", "hamlet evaluate --x");
    w.set_attribute("/methods/adam", "final_mean", 0.25);
    w.set_attribute("/methods/adam", "problems", int64_t{100});
    w.set_attribute("/methods/adam/loss", "unit", "nats");
    w.create_extendible("/curve", 3);
    w.append_row("/curve", {1, 2, 3});
    w.append_row("/curve", {4, 5, 6});
    CHECK_THROWS_AS(w.append_row("/curve", {1}), Error);
    CHECK_FALSE(std::filesystem::exists(path));
    w.commit();
  }
  REQUIRE(std::filesystem::exists(path));
  CHECK(std::distance(std::filesystem::directory_iterator(dir.path()), std::filesystem::directory_iterator()) == 1);

  io::H5Reader r(path);
  CHECK(at::equal(r.read("/methods/adam/loss"), loss));
  CHECK(test::max_abs_diff(r.read("/methods/adam/final_loss"), loss.select(1, 6)) < 1e-7);
  CHECK(at::equal(r.read("/counts"), counts));
  CHECK((r.read_strings("/method_names") == std::vector<std::string>{"adam", "sgd"}));
  CHECK(r.attribute_string("/", "command") == "hamlet evaluate --x");
  CHECK(r.attribute_double("/methods/adam", "final_mean") == 0.25);
  CHECK(r.attribute_int("/methods/adam", "problems") == 100);
  CHECK(r.attribute_string("/methods/adam/loss", "unit") == "nats");
  CHECK(at::equal(r.read("/curve"), at::arange(1, 7, at::kDouble).reshape({2, 3})));
  CHECK((r.children("/methods") == std::vector<std::string>{"adam"}));
  CHECK(r.exists("/methods/adam/loss"));
  CHECK_FALSE(r.exists("/methods/sgd"));
  CHECK_THROWS_WITH(r.read("/nope"), Catch::Contains("no dataset /nope"));
}

TEST_CASE("HDF5 writer failures are clear and leave nothing behind") {
  test::TempDir dir;
  SECTION("a writer destroyed without commit removes its temporary file") {
    const std::string path = (dir / "partial.h5").string();
    {
      io::H5Writer w(path);
      w.write("/x", at::ones({3}));
    }
    CHECK(std::filesystem::is_empty(dir.path()));
  }
  SECTION("missing directory") {
    CHECK_THROWS_WITH(io::H5Writer((dir / "no/such/dir/run.h5").string()), Catch::Contains("does not exist"));
  }
  SECTION("reading a missing or non-HDF5 file") {
    CHECK_THROWS_WITH(io::H5Reader((dir / "missing.h5").string()), Catch::Contains("no such file"));
    const auto junk = dir / "junk.h5";
    FILE* f = std::fopen(junk.c_str(), "w");
    std::fputs("not hdf5", f);
    std::fclose(f);
    CHECK_THROWS_WITH(io::H5Reader(junk.string()), Catch::Contains("not a readable HDF5 file"));
  }
}
