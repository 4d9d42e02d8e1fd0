#include "support/catch.hpp"

#include "hamlet/core/error.hpp"
#include "hamlet/core/registry.hpp"

using namespace hamlet;

TEST_CASE("Registry keeps its order, builds by name and names the valid entries of an unknown one") {
  const Registry<Factory<int>> r("widget", {{"one", [](OptionMap) { return 1; }},
                                            {"two", [](OptionMap o) { return 2 + static_cast<int>(o.size()); }}});
  CHECK(r.names() == std::vector<std::string>{"one", "two"});
  CHECK(r.contains("two"));
  CHECK_FALSE(r.contains("three"));
  CHECK(r.at("one")({}) == 1);
  CHECK(r.at("two")({{"a", "b"}}) == 3);
  CHECK_THROWS_WITH(r.at("three"), "unknown widget 'three'; valid widgets: one, two");
  CHECK_THROWS_WITH((Registry<int>("widget", {{"x", 1}, {"x", 2}})), Catch::Contains("lists 'x' twice"));
}
