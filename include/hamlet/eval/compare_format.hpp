#pragma once
// The comparison table as text: Markdown (what results/ commits), CSV (one row per method) and JSON (every field,
// for plots and the Python package).
#include <string>

#include "hamlet/eval/compare.hpp"

namespace hamlet::eval {

std::string to_markdown(const Comparison& comparison);
std::string to_csv(const Comparison& comparison);
std::string to_json(const Comparison& comparison);

}  // namespace hamlet::eval
