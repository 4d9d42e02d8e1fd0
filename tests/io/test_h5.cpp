#include "support/catch.hpp"

#include <H5Cpp.h>

#include <filesystem>
#include <functional>

#include "hamlet/core/error.hpp"
#include "hamlet/io/h5.hpp"
#include "hamlet/io/schema.hpp"
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

TEST_CASE("the content checksum: valid after commit, a changed value or attribute is a mismatch, none is reported") {
  test::TempDir dir;
  const std::string path = (dir / "w.h5").string();
  const auto write = [&] {
    io::H5Writer w(path);
    w.write("/weights/a", at::arange(6, at::kDouble).reshape({2, 3}));
    w.write("/weights/b", at::arange(3, at::kLong));
    w.write_strings("/names", {"a", "b"});
    w.set_attribute("/", "optimizer", "phnn");
    w.set_attribute("/weights/a", "scale", 0.5);
    w.create_extendible("/curve", 2);
    w.append_row("/curve", {1, 2});
    w.commit();
  };
  write();
  CHECK(io::H5Reader(path).integrity() == io::H5Reader::Integrity::kValid);
  CHECK_NOTHROW(io::check_content(io::H5Reader(path), "weights file", 1, true));
  // The checksum is of the content, not the bytes: the same content written again has the same one.
  const std::string first = io::H5Reader(path).attribute_string("/", "content_checksum");
  write();
  CHECK(io::H5Reader(path).attribute_string("/", "content_checksum") == first);
  CHECK(first.rfind("fnv1a64:", 0) == 0);

  const auto edit = [&](const std::function<void(H5::H5File&)>& change) {
    write();
    {
      H5::H5File file(path, H5F_ACC_RDWR);
      change(file);
    }
    return io::H5Reader(path).integrity();
  };
  CHECK(edit([](H5::H5File& f) {
          const double v = 7;
          H5::DataSet ds = f.openDataSet("/weights/a");
          hsize_t start[2] = {1, 2}, count[2] = {1, 1};
          H5::DataSpace space = ds.getSpace();
          space.selectHyperslab(H5S_SELECT_SET, count, start);
          H5::DataSpace one(2, count);
          ds.write(&v, H5::PredType::NATIVE_DOUBLE, one, space);
        }) == io::H5Reader::Integrity::kMismatch);
  CHECK(edit([](H5::H5File& f) {
          const double v = 0.25;
          f.openDataSet("/weights/a").openAttribute("scale").write(H5::PredType::NATIVE_DOUBLE, &v);
        }) == io::H5Reader::Integrity::kMismatch);
  CHECK(edit([](H5::H5File& f) { f.unlink("/weights/b"); }) == io::H5Reader::Integrity::kMismatch);
  CHECK_THROWS_WITH(io::check_content(io::H5Reader(path), "weights file", 0, true),
                    Catch::Contains(path + ": this weights file does not match the checksum"));
  CHECK(edit([](H5::H5File& f) { f.openGroup("/").removeAttr("content_checksum"); }) ==
        io::H5Reader::Integrity::kNoChecksum);
  CHECK_NOTHROW(io::check_content(io::H5Reader(path), "weights file", 0, true));  // version 0: a warning only
  CHECK_THROWS_WITH(io::check_content(io::H5Reader(path), "weights file", 1, true),
                    Catch::Contains("schema_version 1 but no content checksum"));
}
