#pragma once
// Assertion helpers for the repeated shapes of the tests: a record compared member by member, a key=value map
// checked against the entries a test expects.
#include <map>
#include <string>
#include <vector>

#include "support/catch.hpp"

namespace hamlet::test {

// CHECKs a.*m == b.*m for every listed member m, one assertion each, so that a failure shows the two values; the
// member's position in the list (from 0) is in the failure message.
template <typename T, typename... Types>
void check_members_equal(const T& a, const T& b, Types T::*... members) {
  int position = 0;
  const auto check = [&position](const auto& x, const auto& y) {
    INFO("member " << position++ << " of the list");
    CHECK(x == y);
  };
  (check(a.*members, b.*members), ...);
}

// CHECKs that `map` holds every entry of `expected` with the expected value (a missing key is a failure naming it).
inline void check_entries(const std::map<std::string, std::string>& map,
                          const std::map<std::string, std::string>& expected) {
  for (const auto& [key, value] : expected) {
    INFO("key " << key);
    const auto it = map.find(key);
    REQUIRE(it != map.end());
    CHECK(it->second == value);
  }
}

// CHECKs that none of `keys` is in `map`.
inline void check_no_keys(const std::map<std::string, std::string>& map, const std::vector<std::string>& keys) {
  for (const auto& key : keys) {
    INFO("key " << key);
    CHECK(map.count(key) == 0);
  }
}

// The element of `items` whose `name` member is `name` (rows of a table); a failure naming it when there is none.
template <typename Items>
const auto& named(const Items& items, const std::string& name) {
  for (const auto& item : items) {
    if (item.name == name) return item;
  }
  FAIL("no row named " << name);
  return *items.begin();
}

}  // namespace hamlet::test
