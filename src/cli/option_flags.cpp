#include "hamlet/cli/option_flags.hpp"

#include <algorithm>

#include "hamlet/core/error.hpp"

namespace po = boost::program_options;

namespace hamlet::cli {

std::string flag_name(const std::string& key) {
  std::string out = key;
  std::replace(out.begin(), out.end(), '_', '-');
  return out;
}

void add_option_flags(po::options_description& desc, const std::vector<OptionInfo>& options) {
  for (const auto& o : options) {
    auto* value = po::value<std::string>()->default_value(o.default_value);
    if (o.kind == OptionKind::kBool) value->implicit_value("true");
    desc.add_options()(flag_name(o.key).c_str(), value, o.help.c_str());
  }
}

OptionMap option_flag_values(const ParsedArgs& parsed, const std::vector<OptionInfo>& options) {
  OptionMap out;
  for (const auto& o : options) {
    const std::string flag = flag_name(o.key);
    HAMLET_CHECK(parsed.values.count(flag) > 0, "internal: no flag --", flag, " was declared");
    out[o.key] = parsed.values[flag].as<std::string>();
  }
  return out;
}

std::vector<OptionInfo> select_options(const std::vector<OptionInfo>& options, const std::vector<std::string>& keys) {
  std::vector<OptionInfo> out;
  for (const auto& key : keys) {
    const auto it = std::find_if(options.begin(), options.end(), [&](const OptionInfo& o) { return o.key == key; });
    HAMLET_CHECK(it != options.end(), "internal: no option '", key, "' to select");
    out.push_back(*it);
  }
  return out;
}

}  // namespace hamlet::cli
