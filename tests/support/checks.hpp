#pragma once
// Assertion helpers for the repeated shapes of the tests: a record compared member by member.
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

}  // namespace hamlet::test
