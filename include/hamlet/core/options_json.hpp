#pragma once
// Options recorded in files as JSON. HDF5 attributes `options`, `task_options` (and the like) hold a JSON object with
// string values, {"lr": "0.1", ...}, readable with Python's json.loads; files written before that hold the
// "k1=v1, k2=v2" form of format_options(), which parse_options_text still reads.
#include <string>

#include "hamlet/core/options.hpp"

namespace hamlet {

// OptionMap -> JSON object text with string values, keys in map order.
std::string options_to_json(const OptionMap& options);
// A JSON object (number and boolean values are rendered as text: 0.1 -> "0.1", true -> "true") or the older
// "k1=v1, k2=v2" -> OptionMap. Throws naming `what` when the text is neither.
OptionMap parse_options_text(const std::string& text, const std::string& what = "options");

}  // namespace hamlet
