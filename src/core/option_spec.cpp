#include "hamlet/core/option_spec.hpp"

namespace hamlet {

const char* option_kind_name(OptionKind kind) {
  switch (kind) {
    case OptionKind::kBool: return "bool";
    case OptionKind::kInteger: return "integer";
    case OptionKind::kUnsigned: return "integer >= 0";
    case OptionKind::kNumber: return "number";
    case OptionKind::kText: return "text";
    case OptionKind::kIntegerList: return "integers a:b:c";
  }
  return "?";
}

namespace checks {

void OneOf::operator()(const std::string& field, const std::string& value) const {
  std::string valid;
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (values[i] == value) return;
    valid += (i == 0 ? "" : i + 1 == values.size() ? " or " : ", ") + values[i];
  }
  throw Error(detail::concat(field, " must be ", valid, ", got '", value, "'"));
}

}  // namespace checks

namespace detail {

std::string format_option(const std::vector<int64_t>& v) {
  std::string out;
  for (const int64_t x : v) out += (out.empty() ? "" : ":") + std::to_string(x);
  return out;
}

}  // namespace detail
}  // namespace hamlet
