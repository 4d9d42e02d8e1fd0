#pragma once
// Private to the eval module: how the comparison and drift tables write numbers.
#include <string>

namespace hamlet::eval::detail {

// Three decimals, or three significant digits in e-notation for very small and large values; "diverged" for +inf.
std::string fmt(double v);
// fmt with a leading '+' for non-negative finite values.
std::string fmt_signed(double v);

}  // namespace hamlet::eval::detail
