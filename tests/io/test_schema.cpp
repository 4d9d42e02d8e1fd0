// What every kind shares (io/schema.hpp): schema_version, options text of both generations.
#include "hamlet/core/options_json.hpp"
#include "hamlet/io/h5.hpp"
#include "hamlet/io/schema.hpp"
#include "support/catch.hpp"
#include "support/test_support.hpp"

using namespace hamlet;

TEST_CASE("options text: JSON at every version, the old k=v form at version 0 only") {
  const OptionMap options = {{"lr", "0.03"}, {"hidden", "20:20"}, {"weights", "/a b/c.h5"}, {"preprocess", "true"}};
  const std::string json = options_to_json(options);
  CHECK(json == R"({"hidden":"20:20","lr":"0.03","preprocess":"true","weights":"/a b/c.h5"})");
  CHECK(io::read_options_text(json, 0, "x") == options);
  CHECK(io::read_options_text(json, 1, "x") == options);
  CHECK(io::read_options_text(format_options(options), 0, "x") == options);
  CHECK_THROWS_WITH(io::read_options_text(format_options(options), 1, "adam options"),
                    Catch::Contains("adam options") && Catch::Contains("invalid JSON"));
  // Numbers and booleans in JSON become the text the k=v form would hold.
  CHECK(io::read_options_text(R"({"lr": 0.03, "steps": 100, "preprocess": true})", 1, "x") ==
        OptionMap{{"lr", "0.03"}, {"steps", "100"}, {"preprocess", "true"}});
  CHECK(io::read_options_text("", 1, "x").empty());
  CHECK_THROWS_WITH(io::read_options_text("{\"lr\": [1]}", 0, "adam options"), Catch::Contains("adam options"));
  CHECK_THROWS_WITH(io::read_options_text("{oops", 0, "x"), Catch::Contains("invalid JSON"));
  CHECK_THROWS_WITH(io::read_options_text("no equals sign", 0, "x"), Catch::Contains("neither a JSON object"));
}

TEST_CASE("schema_version: absent is 0, newer than current is refused, not an integer is refused") {
  test::TempDir dir;
  const std::string path = (dir / "f.h5").string();
  {
    io::H5Writer w(path);
    w.write("/x", at::zeros({1}));
    w.commit();
  }
  CHECK(io::read_schema_version(io::H5Reader(path), "run file", 1) == 0);
  {
    io::H5Writer w(path);
    io::write_schema_version(w, 3);
    w.commit();
  }
  CHECK(io::read_schema_version(io::H5Reader(path), "run file", 3) == 3);
  CHECK_THROWS_WITH(io::read_schema_version(io::H5Reader(path), "run file", 2),
                    Catch::Contains(path + ": this run file has schema_version 3, newer than the version 2"));
  {
    io::H5Writer w(path);
    w.set_attribute("/", io::kSchemaVersionAttribute, "1");
    w.commit();
  }
  CHECK_THROWS_WITH(io::read_schema_version(io::H5Reader(path), "run file", 1), Catch::Contains("not an integer"));
}

TEST_CASE("dataset storage: chunks of whole rows, compressed, values unchanged") {
  test::TempDir dir;
  const std::string path = (dir / "f.h5").string();
  const at::Tensor big = at::randn({1000, 300}, at::kDouble);  // 2.4 MB: several chunks
  const at::Tensor ints = at::arange(5000, at::kLong);
  const at::Tensor empty = at::zeros({0, 5}, at::kDouble);
  {
    io::H5Writer w(path);
    w.write("/big", big);
    w.write("/ints", ints);
    w.write("/empty", empty);
    w.write("/small", at::ones({40, 100}));
    w.create_extendible("/curve", 3);
    w.append_row("/curve", {1, 2, 3});
    w.commit();
  }
  const io::H5Reader r(path);
  for (const char* name : {"/big", "/ints", "/curve"}) {
    INFO(name);
    const io::DatasetLayout l = r.layout(name);
    CHECK(l.chunked);
    CHECK(l.shuffle);
    CHECK(l.deflate);
  }
  CHECK_FALSE(r.layout("/empty").chunked);
  CHECK_FALSE(r.layout("/small").chunked);
  CHECK(at::equal(r.read("/big"), big));
  CHECK(at::equal(r.read("/ints"), ints));
  CHECK(r.read("/empty").sizes() == empty.sizes());
  CHECK(r.integrity() == io::H5Reader::Integrity::kValid);
}
