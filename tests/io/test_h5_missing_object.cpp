// H5Reader asked for an attribute of a group or dataset the file lacks (found by the tests/fuzz targets: the object
// lookup's result was used without checking it): a hamlet::Error naming the file and the object.
#include "support/catch.hpp"

#include "hamlet/core/error.hpp"
#include "hamlet/io/h5.hpp"
#include "support/test_support.hpp"

using namespace hamlet;

TEST_CASE("an attribute of a missing object is an error naming the file and the object") {
  test::TempDir dir;
  const std::string path = (dir / "f.h5").string();
  {
    io::H5Writer w(path);
    w.write("/group/data", at::zeros({2}, at::kDouble));
    w.set_attribute("/group", "count", int64_t{2});
    w.commit();
  }
  const io::H5Reader r(path);
  CHECK(r.attribute_int("/group", "count") == 2);
  for (const std::string missing : {"/nothing", "/group/nothing", "/group/data/nothing"}) {
    INFO(missing);
    CHECK_THROWS_WITH(r.attribute_int(missing, "count"), Catch::Contains(path) && Catch::Contains(missing));
    CHECK_THROWS_AS(r.attribute_string(missing, "name"), Error);
    CHECK_THROWS_AS(r.attribute_double(missing, "x"), Error);
  }
}
