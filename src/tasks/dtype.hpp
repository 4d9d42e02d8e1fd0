#pragma once
// Private helpers of the tasks module: the "dtype" option.
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

// The check of every task's "dtype" option (option_spec.hpp).
inline void check_dtype(const std::string& field, const std::string& name) {
  HAMLET_CHECK(name == "float32" || name == "float64", field, " must be float32 or float64, got '", name, "'");
}

}  // namespace hamlet::tasks::detail
