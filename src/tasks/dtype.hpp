#pragma once
// Private helpers of the tasks module: parse the "dtype" option, render layer sizes.
#include <c10/core/ScalarType.h>

#include <string>
#include <vector>

#include "hamlet/core/error.hpp"

namespace hamlet::tasks::detail {

inline c10::ScalarType parse_dtype(const std::string& owner, const std::string& name) {
  if (name == "float32") return c10::kFloat;
  if (name == "float64") return c10::kDouble;
  throw Error(owner + ".dtype must be float32 or float64, got '" + name + "'");
}

// Layer sizes as the "hidden" option writes them: "20", "20:20".
inline std::string join_ints(const std::vector<int64_t>& xs) {
  std::string out;
  for (auto x : xs) out += (out.empty() ? "" : ":") + std::to_string(x);
  return out;
}

}  // namespace hamlet::tasks::detail
