#pragma once
// Command-line + INI parsing shared by the hamlet subcommands (Boost.Program_options).
#include <boost/program_options.hpp>

#include <map>
#include <string>
#include <vector>

#include "hamlet/core/options.hpp"

namespace hamlet::cli {

struct ParsedArgs {
  boost::program_options::variables_map values;
  // Dynamic "section.key" options (e.g. "task.dim", "optimizer.adam.lr") from flags and the config file.
  OptionMap dynamic;
  // The resolved configuration as INI text (registered options with their final values, then dynamic ones;
  // output paths --out and --weights-out are left out).
  std::string resolved_ini;
  bool help = false;
};

// Parses `args` (without the program and command names) against `desc` plus --config/--help. Dynamic options
// must start with one of `dynamic_prefixes` and be written --key=value. Throws hamlet::Error on any problem.
ParsedArgs parse_args(const std::vector<std::string>& args, const boost::program_options::options_description& desc,
                      const std::vector<std::string>& dynamic_prefixes);

// Options under "<prefix>." with the prefix removed ("task.dim" -> "dim").
OptionMap options_with_prefix(const OptionMap& dynamic, const std::string& prefix);

// Splits "a,b,c" into items (empty items dropped).
std::vector<std::string> split_list(const std::string& text);

// Common options of the run commands: --log-level, --threads, --device.
boost::program_options::options_description common_options();
// Applies --log-level and --threads.
void apply_common_options(const ParsedArgs& parsed);

}  // namespace hamlet::cli
