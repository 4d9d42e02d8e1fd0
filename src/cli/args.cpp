#include "hamlet/cli/args.hpp"

#include <ATen/Parallel.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "commands.hpp"
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

// The commands whose INI sections [NAME] hold keys for that command only.
bool is_command(const std::string& name) {
  for (const auto& c : commands()) {
    if (c.name == name) return true;
  }
  return false;
}

bool has_dynamic_prefix(const std::string& key, const std::vector<std::string>& prefixes) {
  for (const auto& p : prefixes) {
    if (key.rfind(p + ".", 0) == 0) return true;
  }
  return false;
}

std::string dynamic_hint(const std::vector<std::string>& prefixes) {
  std::string valid;
  // Optimizer options are per optimizer: --optimizer.adam.lr, not --optimizer.lr.
  for (const auto& p : prefixes) valid += (valid.empty() ? "" : ", ") + ("--" + p + (p == "optimizer" ? ".NAME" : "") + ".KEY=VALUE");
  return valid.empty() ? std::string() : "; dynamic options accepted here: " + valid;
}

// Dynamic options of the command line (registered ones are stored by po::store).
void collect_dynamic_flags(const po::parsed_options& parsed, const std::vector<std::string>& prefixes,
                           OptionMap& out) {
  for (const auto& opt : parsed.options) {
    if (opt.position_key >= 0) {
      throw Error("unexpected argument '" + (opt.value.empty() ? std::string() : opt.value[0]) +
                  "'; options are written --name=value");
    }
    if (!opt.unregistered) continue;
    const std::string& key = opt.string_key;
    if (!has_dynamic_prefix(key, prefixes)) {
      throw Error("unknown option '" + key + "'" + dynamic_hint(prefixes) + "; see --help for the others");
    }
    if (opt.value.empty()) throw Error("option --" + key + " needs a value: write --" + key + "=VALUE");
    // Like the registered options, a dynamic option may be given once; silently keeping one of two values would
    // run a different experiment than the command line reads.
    if (const auto it = out.find(key); it != out.end()) {
      throw Error("option '" + key + "' given twice ('" + it->second + "' and '" + opt.value[0] + "')");
    }
    out.emplace(key, opt.value[0]);
  }
}

// One key = value of a config file as this command reads it.
struct FileEntry {
  std::string key, value;
  std::size_t file = 0;  // index into the --config list
  std::string where;     // "config file 'F'" or "[section] of config file 'F'", for messages
};

// The entries of `path` that `command` reads: top-level keys and [task] / [optimizer.NAME] / other non-command
// sections as they are, keys under [command] (or [command.sub]) with the section name removed; sections named
// after other commands are skipped.
std::vector<FileEntry> read_config_file(const std::string& path, std::size_t index, const std::string& command) {
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  HAMLET_CHECK(std::filesystem::exists(status), "config file '", path, "' does not exist");
  HAMLET_CHECK(std::filesystem::is_regular_file(status), "config file '", path, "' is ",
               std::filesystem::is_directory(status) ? "a directory" : "not a regular file",
               "; --config takes an INI file");
  std::ifstream in(path);
  HAMLET_CHECK(in.good(), "cannot read config file '", path, "'");
  std::vector<po::option> raw;
  try {
    raw = po::parse_config_file(in, po::options_description(), /*allow_unregistered=*/true).options;
  } catch (const po::error& e) {
    throw Error("config file '" + path + "': " + e.what());
  }
  std::vector<FileEntry> out;
  for (const auto& opt : raw) {
    FileEntry e;
    e.key = opt.string_key;
    e.value = opt.value.empty() ? "" : opt.value[0];
    e.file = index;
    e.where = "config file '" + path + "'";
    const auto dot = e.key.find('.');
    if (dot != std::string::npos && is_command(e.key.substr(0, dot))) {
      const std::string section = e.key.substr(0, dot);
      if (section != command) continue;
      e.key = e.key.substr(dot + 1);
      e.where = "[" + section + "] of " + e.where;
    }
    out.push_back(std::move(e));
  }
  return out;
}

// Reads the --config files in order into `values` (registered options) and `dynamic`, below the flags already
// stored there: a flag wins over every file. The same key twice in one file, or with two different values in two
// files, is an error naming both places.
void read_config_files(const std::vector<std::string>& paths, const std::string& command,
                       const po::options_description& all, const std::vector<std::string>& prefixes,
                       po::variables_map& values, OptionMap& dynamic) {
  std::map<std::string, FileEntry> seen;
  for (std::size_t f = 0; f < paths.size(); ++f) {
    for (const auto& e : read_config_file(paths[f], f, command)) {
      HAMLET_CHECK(e.key != "config", "'config' in ", e.where,
                   ": a config file cannot name another; give every file with its own --config");
      const po::option_description* d = all.find_nothrow(e.key, /*approx=*/false);
      if (d == nullptr && !has_dynamic_prefix(e.key, prefixes)) {
        const bool in_section = e.where.front() == '[';
        throw Error("unknown option '" + e.key + "' in " + e.where + " for hamlet " + command +
                    (in_section ? std::string("; hamlet ") + command + " --help lists its options"
                                : std::string("; keys outside a command section are read by every command given "
                                              "the file, so put keys of one command under [") +
                                      command + "] (or the other command's section)") +
                    dynamic_hint(prefixes));
      }
      const bool composing = d != nullptr && d->semantic()->is_composing();
      if (!composing) {
        const auto [it, inserted] = seen.emplace(e.key, e);
        if (!inserted) {
          const FileEntry& first = it->second;
          HAMLET_CHECK(first.file != e.file, "option '", e.key, "' given twice in ", e.where, " ('", first.value,
                       "' and '", e.value, "')");
          HAMLET_CHECK(first.value == e.value, "option '", e.key, "' is '", first.value, "' in ", first.where,
                       " but '", e.value, "' in ", e.where, "; the files must agree (a flag overrides both)");
          continue;  // the same value again: nothing to add
        }
      }
      if (d == nullptr) {
        dynamic.emplace(e.key, e.value);  // keeps a flag's value
        continue;
      }
      po::parsed_options one(&all);
      one.options.emplace_back(e.key, std::vector<std::string>{e.value});
      try {
        po::store(one, values);  // skips a key a flag already set
      } catch (const po::error& err) {
        throw Error(std::string(err.what()) + " (in " + e.where + ")");
      }
    }
  }
}

}  // namespace

ParsedArgs parse_args(const std::vector<std::string>& args, const po::options_description& desc,
                      const std::vector<std::string>& dynamic_prefixes, const std::string& command) {
  po::options_description all;
  all.add_options()("help,h", "show this help")(
      "config", po::value<std::vector<std::string>>()->composing(),
      "INI file with options; repeatable, the files must agree on shared keys, flags override them")(
      "print-config", po::bool_switch(), "print the resolved configuration (INI) and exit without running");
  all.add(desc);
  ParsedArgs out;
  try {
    // Boost guesses an abbreviated flag's full name (--step for --steps) by default: a typo would silently set
    // another option, so every flag must be spelled out.
    const int style = po::command_line_style::default_style & ~po::command_line_style::allow_guessing;
    const auto parsed = po::command_line_parser(args).options(all).style(style).allow_unregistered().run();
    po::store(parsed, out.values);
    collect_dynamic_flags(parsed, dynamic_prefixes, out.dynamic);
    if (out.values.count("config")) {
      out.config_files = out.values["config"].as<std::vector<std::string>>();
      read_config_files(out.config_files, command, all, dynamic_prefixes, out.values, out.dynamic);
    }
    po::notify(out.values);
  } catch (const po::error& e) {
    throw Error(e.what());
  }
  out.help = out.values.count("help") > 0;
  out.print_config = out.values["print-config"].as<bool>();

  std::ostringstream ini;
  for (const auto& [key, value] : out.values) {
    // Output locations are not configuration: a rerun with --config should not be tied to them. The config files
    // themselves are resolved into the values.
    if (key == "help" || key == "config" || key == "print-config" || key == "out" || key == "weights-out") continue;
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

bool print_help_or_config(const ParsedArgs& parsed, const po::options_description& desc) {
  if (parsed.help) {
    std::cout << desc << "\n"
              << "  --config FILE          INI file with options (repeatable; see README \"Using the tool\")\n"
              << "  --print-config         print the resolved configuration and exit\n";
    return true;
  }
  if (parsed.print_config) {
    std::cout << parsed.resolved_ini;
    return true;
  }
  return false;
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
