#pragma once
// Options recorded in files as JSON: HDF5 attributes `options`, `task_options` (and the like) hold a JSON object
// with string values, {"lr": "0.1", ...}, readable with Python's json.loads. Reading the attributes of older files
// (other forms) is the io module's business (hamlet/io/schema.hpp).
#include <string>

#include "hamlet/core/options.hpp"

namespace hamlet {

// OptionMap -> JSON object text with string values, keys in map order.
std::string options_to_json(const OptionMap& options);
// A JSON object -> OptionMap (number and boolean values are rendered as text: 0.1 -> "0.1", true -> "true"); empty
// or blank text is an empty map. Throws naming `what` when the text is not such an object.
OptionMap options_from_json(const std::string& text, const std::string& what = "options");

}  // namespace hamlet
