#pragma once
// Private helper of the tasks module: parse the "dtype" option.
#include <c10/core/ScalarType.h>

#include <string>

#include "hamlet/core/error.hpp"

namespace hamlet::tasks::detail {

inline c10::ScalarType parse_dtype(const std::string& owner, const std::string& name) {
  if (name == "float32") return c10::kFloat;
  if (name == "float64") return c10::kDouble;
  throw Error(owner + ".dtype must be float32 or float64, got '" + name + "'");
}

}  // namespace hamlet::tasks::detail
