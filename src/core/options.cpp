#include "hamlet/core/options.hpp"

#include <cmath>
#include <cstdio>
#include <sstream>

#include "hamlet/core/error.hpp"

namespace hamlet {

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r");
  if (b == std::string::npos) return "";
  const auto e = s.find_last_not_of(" \t\r");
  return s.substr(b, e - b + 1);
}

namespace {

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : ", ") + item;
  return out;
}

}  // namespace

OptionMap parse_option_list(const std::string& text) {
  OptionMap out;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    item = trim(item);
    if (item.empty()) continue;
    const auto eq = item.find('=');
    HAMLET_CHECK(eq != std::string::npos && eq > 0, "option '", item, "' is not of the form key=value");
    out[trim(item.substr(0, eq))] = trim(item.substr(eq + 1));
  }
  return out;
}

std::string format_options(const OptionMap& options) {
  std::string out;
  for (const auto& [k, v] : options) out += (out.empty() ? "" : ", ") + k + "=" + v;
  return out;
}

std::string format_number(double value) {
  char buf[64];
  for (int precision = 6; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof(buf), "%.*g", precision, value);
    if (std::strtod(buf, nullptr) == value) break;
  }
  return buf;
}

std::optional<double> parse_number(const std::string& text) {
  std::size_t used = 0;
  double parsed = 0.0;
  try {
    parsed = std::stod(text, &used);
  } catch (const std::exception&) {
    return std::nullopt;
  }
  if (text.empty() || used != text.size()) return std::nullopt;
  return parsed;
}

std::optional<int64_t> parse_integer(const std::string& text) {
  std::size_t used = 0;
  long long parsed = 0;
  try {
    parsed = std::stoll(text, &used);
  } catch (const std::exception&) {
    return std::nullopt;
  }
  if (text.empty() || used != text.size()) return std::nullopt;
  return static_cast<int64_t>(parsed);
}

namespace {

// Removes `key` from `options` and returns its text; nullopt when it is not there.
std::optional<std::string> take_text(OptionMap& options, const std::string& key) {
  const auto it = options.find(key);
  if (it == options.end()) return std::nullopt;
  std::string text = it->second;
  options.erase(it);
  return text;
}

// Takes `key` through `parse` (parse_number, parse_integer); `what` names the expected kind in the error.
template <typename T, typename Parse>
void take_parsed(OptionMap& options, const std::string& owner, const std::string& key, T& value, Parse parse,
                 const char* what) {
  const auto text = take_text(options, key);
  if (!text) return;
  const auto parsed = parse(*text);
  HAMLET_CHECK(parsed, owner, ": option '", key, "' expects ", what, ", got '", *text, "'");
  value = *parsed;
}

}  // namespace

void take_option(OptionMap& options, const std::string& owner, const std::string& key, double& value) {
  take_parsed(options, owner, key, value, parse_number, "a number");
}

void take_option(OptionMap& options, const std::string& owner, const std::string& key, int64_t& value) {
  take_parsed(options, owner, key, value, parse_integer, "an integer");
}

void take_option(OptionMap& options, const std::string& owner, const std::string& key, uint64_t& value) {
  const auto it = options.find(key);
  if (it == options.end()) return;
  const std::string text = it->second;
  int64_t parsed = 0;
  take_option(options, owner, key, parsed);
  HAMLET_CHECK(parsed >= 0, owner, ": option '", key, "' expects an integer >= 0, got '", text, "'");
  value = static_cast<uint64_t>(parsed);
}

void take_option(OptionMap& options, const std::string& owner, const std::string& key, bool& value) {
  const auto given = take_text(options, key);
  if (!given) return;
  const std::string& text = *given;
  if (text == "true" || text == "1" || text == "on" || text == "yes") {
    value = true;
  } else if (text == "false" || text == "0" || text == "off" || text == "no") {
    value = false;
  } else {
    throw Error(detail::concat(owner, ": option '", key, "' expects true or false, got '", text, "'"));
  }
}

void take_option(OptionMap& options, const std::string& owner, const std::string& key, std::string& value) {
  (void)owner;
  if (auto text = take_text(options, key)) value = std::move(*text);
}

void take_option(OptionMap& options, const std::string& owner, const std::string& key,
                 std::vector<int64_t>& value) {
  const auto given = take_text(options, key);
  if (!given) return;
  const std::string& text = *given;
  std::vector<int64_t> parsed;
  std::stringstream in(text);
  std::string item;
  // Lists use ':' or ' ' as separator because ',' separates options ("hidden=40:40").
  while (in >> item) {
    std::stringstream parts(item);
    std::string part;
    while (std::getline(parts, part, ':')) {
      if (part.empty()) continue;
      const auto v = parse_integer(part);
      HAMLET_CHECK(v, owner, ": option '", key, "' expects integers separated by ':', got '", text, "'");
      parsed.push_back(*v);
    }
  }
  HAMLET_CHECK(!parsed.empty(), owner, ": option '", key, "' expects at least one integer, got '", text, "'");
  value = parsed;
}

void reject_unknown_options(const OptionMap& options, const std::string& owner, const std::vector<std::string>& valid) {
  if (options.empty()) return;
  std::vector<std::string> unknown;
  for (const auto& kv : options) unknown.push_back(kv.first);
  throw Error(detail::concat(owner, ": unknown option(s) ", join(unknown), "; valid options: ", join(valid)));
}

void check_positive(const std::string& field, double value) {
  HAMLET_CHECK(std::isfinite(value) && value > 0.0, field, " must be a positive finite number, got ",
               format_number(value));
}

void check_non_negative(const std::string& field, double value) {
  HAMLET_CHECK(std::isfinite(value) && value >= 0.0, field, " must be a finite number >= 0, got ", format_number(value));
}

void check_finite(const std::string& field, double value) {
  HAMLET_CHECK(std::isfinite(value), field, " must be finite, got ", format_number(value));
}

void check_in_range(const std::string& field, double value, double lo, double hi, bool hi_inclusive) {
  const bool ok = std::isfinite(value) && value >= lo && (hi_inclusive ? value <= hi : value < hi);
  HAMLET_CHECK(ok, field, " must be in [", format_number(lo), ", ", format_number(hi), hi_inclusive ? "]" : ")",
               ", got ", format_number(value));
}

void check_positive(const std::string& field, int64_t value) {
  HAMLET_CHECK(value > 0, field, " must be a positive integer, got ", value);
}

}  // namespace hamlet
