#include "hamlet/cli/args.hpp"

#include <ATen/Parallel.h>
#include <spdlog/spdlog.h>

#include <fstream>
#include <sstream>

#include "hamlet/core/error.hpp"
#include "hamlet/data/dataset.hpp"

namespace po = boost::program_options;

namespace hamlet::cli {
namespace {

std::string any_to_string(const boost::any& value) {
  if (value.empty()) return "";
  if (const auto* v = boost::any_cast<std::string>(&value)) return *v;
  if (const auto* v = boost::any_cast<int64_t>(&value)) return std::to_string(*v);
  if (const auto* v = boost::any_cast<uint64_t>(&value)) return std::to_string(*v);
  if (const auto* v = boost::any_cast<int>(&value)) return std::to_string(*v);
  if (const auto* v = boost::any_cast<double>(&value)) return format_number(*v);
  if (const auto* v = boost::any_cast<bool>(&value)) return *v ? "true" : "false";
  if (const auto* v = boost::any_cast<std::vector<std::string>>(&value)) {
    std::string joined;
    for (const auto& item : *v) joined += (joined.empty() ? "" : ",") + item;
    return joined;
  }
  return "?";
}

void collect_dynamic(const po::parsed_options& parsed, const std::vector<std::string>& prefixes, OptionMap& out,
                     bool from_file) {
  OptionMap seen;
  for (const auto& opt : parsed.options) {
    if (opt.position_key >= 0) {
      throw Error("unexpected argument '" + (opt.value.empty() ? std::string() : opt.value[0]) +
                  "'; options are written --name=value");
    }
    if (!opt.unregistered) continue;
    const std::string& key = opt.string_key;
    bool allowed = false;
    for (const auto& p : prefixes) allowed = allowed || key.rfind(p + ".", 0) == 0;
    if (!allowed) {
      std::string valid;
      for (const auto& p : prefixes) valid += (valid.empty() ? "" : ", ") + ("--" + p + ".KEY=VALUE");
      throw Error("unknown option '" + key + "'" + (from_file ? " in the config file" : "") +
                  (valid.empty() ? std::string() : "; dynamic options accepted here: " + valid) +
                  "; see --help for the others");
    }
    if (opt.value.empty()) throw Error("option --" + key + " needs a value: write --" + key + "=VALUE");
    // Like the registered options, a dynamic option may be given once per source; silently keeping one of two
    // values would run a different experiment than the command line reads.
    if (const auto it = seen.find(key); it != seen.end()) {
      throw Error("option '" + key + "' given twice" + (from_file ? " in the config file" : "") + " ('" + it->second +
                  "' and '" + opt.value[0] + "')");
    }
    seen.emplace(key, opt.value[0]);
    // Flags are parsed first, so the first value seen for a key (the flag) wins over the config file.
    out.emplace(key, opt.value[0]);
  }
}

}  // namespace

ParsedArgs parse_args(const std::vector<std::string>& args, const po::options_description& desc,
                      const std::vector<std::string>& dynamic_prefixes) {
  po::options_description all;
  all.add_options()("help,h", "show this help")("config", po::value<std::string>(),
                                                 "INI file with options (flags override it)");
  all.add(desc);
  ParsedArgs out;
  try {
    const auto parsed = po::command_line_parser(args).options(all).allow_unregistered().run();
    po::store(parsed, out.values);
    collect_dynamic(parsed, dynamic_prefixes, out.dynamic, false);
    if (out.values.count("config")) {
      const std::string path = out.values["config"].as<std::string>();
      std::ifstream in(path);
      HAMLET_CHECK(in.good(), "cannot read config file '", path, "'");
      const auto from_file = po::parse_config_file(in, all, /*allow_unregistered=*/true);
      po::store(from_file, out.values);
      collect_dynamic(from_file, dynamic_prefixes, out.dynamic, true);
    }
    po::notify(out.values);
  } catch (const po::error& e) {
    throw Error(e.what());
  }
  out.help = out.values.count("help") > 0;

  std::ostringstream ini;
  for (const auto& [key, value] : out.values) {
    // Output locations are not configuration: a rerun with --config should not be tied to them.
    if (key == "help" || key == "config" || key == "out" || key == "weights-out") continue;
    ini << key << " = " << any_to_string(value.value()) << "\n";
  }
  std::string section;
  for (const auto& [key, value] : out.dynamic) {
    const auto dot = key.rfind('.');
    const std::string sec = key.substr(0, dot);
    if (sec != section) {
      ini << "[" << sec << "]\n";
      section = sec;
    }
    ini << key.substr(dot + 1) << " = " << value << "\n";
  }
  out.resolved_ini = ini.str();
  return out;
}

OptionMap options_with_prefix(const OptionMap& dynamic, const std::string& prefix) {
  OptionMap out;
  const std::string p = prefix + ".";
  for (const auto& [key, value] : dynamic) {
    if (key.rfind(p, 0) == 0 && key.find('.', p.size()) == std::string::npos) out[key.substr(p.size())] = value;
  }
  return out;
}

std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    const auto b = item.find_first_not_of(" \t");
    if (b == std::string::npos) continue;
    out.push_back(item.substr(b, item.find_last_not_of(" \t") - b + 1));
  }
  return out;
}

po::options_description common_options() {
  po::options_description desc("Common options");
  desc.add_options()("device", po::value<std::string>()->default_value("cpu"), "torch device: cpu, cuda, cuda:1")(
      "threads", po::value<int64_t>()->default_value(1), "intra-op threads for torch")(
      "log-level", po::value<std::string>()->default_value("info"), "trace, debug, info, warn, error")(
      "data-dir", po::value<std::string>()->default_value(""),
      "data root holding mnist/ (default: $HAMLET_DATA_DIR, else the directory configured at build time)");
  return desc;
}

void apply_common_options(const ParsedArgs& parsed) {
  const std::string level = parsed.values["log-level"].as<std::string>();
  const auto lvl = spdlog::level::from_str(level);
  HAMLET_CHECK(lvl != spdlog::level::off || level == "off", "--log-level must be one of trace, debug, info, warn, ",
               "error, off; got '", level, "'");
  spdlog::set_level(lvl);
  const int64_t threads = parsed.values["threads"].as<int64_t>();
  check_positive("--threads", threads);
  at::set_num_threads(static_cast<int>(threads));
  const std::string data_dir = parsed.values["data-dir"].as<std::string>();
  if (!data_dir.empty()) data::set_data_root(data_dir);
}

}  // namespace hamlet::cli
