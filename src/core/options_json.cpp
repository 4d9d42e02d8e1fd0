#include "hamlet/core/options_json.hpp"

#include <nlohmann/json.hpp>

#include "hamlet/core/error.hpp"

namespace hamlet {

std::string options_to_json(const OptionMap& options) {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& [key, value] : options) out[key] = value;
  return out.dump();
}

OptionMap options_from_json(const std::string& text, const std::string& what) {
  if (text.find_first_not_of(" \t\r\n") == std::string::npos) return {};
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw Error(detail::concat(what, ": invalid JSON: ", e.what()));
  }
  HAMLET_CHECK(doc.is_object(), what, ": expected a JSON object");
  OptionMap out;
  for (const auto& [key, value] : doc.items()) {
    if (value.is_string()) {
      out[key] = value.get<std::string>();
    } else if (value.is_number_integer()) {
      out[key] = std::to_string(value.get<int64_t>());
    } else if (value.is_number()) {
      out[key] = format_number(value.get<double>());
    } else if (value.is_boolean()) {
      out[key] = value.get<bool>() ? "true" : "false";
    } else {
      throw Error(detail::concat(what, ": value of '", key, "' is not a string, number or boolean"));
    }
  }
  return out;
}

}  // namespace hamlet
