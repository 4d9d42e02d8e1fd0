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
  // Dynamic "section.key" options (e.g. "task.dim", "optimizer.adam.lr") from flags and the config files.
  OptionMap dynamic;
  // The --config files, in the order given.
  std::vector<std::string> config_files;
  // The resolved configuration as INI text (registered options with their final values, then dynamic ones;
  // output paths --out and --weights-out and the names of the config files are left out). Given back to the same
  // command with --config it resolves to the same values.
  std::string resolved_ini;
  bool help = false;
  bool print_config = false;
};

// Parses `args` (without the program and command names) of hamlet `command` against `desc` plus --config, --help
// and --print-config. Dynamic options must start with one of `dynamic_prefixes` and be written --key=value.
//
// Config files (--config=FILE, repeatable, Boost INI syntax):
//   - top-level keys and sections that are not command names ([task], [optimizer.NAME], [es], [schedule]) are
//     shared: every command given the file reads them, so they must be valid for each (unknown = error);
//   - keys under [COMMAND] (or [COMMAND.sub]) are read only by that command, as if they stood at the top (so
//     [meta-train] epochs = 100 is --epochs=100 for meta-train); sections named after other commands are skipped.
//     One protocol file thus serves meta-train and evaluate;
//   - files compose in order: the same key with different values in two files is an error naming both, the same
//     value is fine, and the same key twice in one file is an error; a flag overrides every file.
// Throws hamlet::Error with one line naming the file, section and key on any problem.
ParsedArgs parse_args(const std::vector<std::string>& args, const boost::program_options::options_description& desc,
                      const std::vector<std::string>& dynamic_prefixes, const std::string& command);

// --help prints `desc` (and the config options), --print-config the resolved configuration; returns true when one
// of them was given and the command should stop (exit code 0).
bool print_help_or_config(const ParsedArgs& parsed, const boost::program_options::options_description& desc);

// Options under "<prefix>." with the prefix removed ("task.dim" -> "dim").
OptionMap options_with_prefix(const OptionMap& dynamic, const std::string& prefix);

// Splits "a,b,c" into items (empty items dropped).
std::vector<std::string> split_list(const std::string& text);

// Common options of the run commands: --log-level, --threads, --device.
boost::program_options::options_description common_options();
// Applies --log-level and --threads.
void apply_common_options(const ParsedArgs& parsed);

}  // namespace hamlet::cli
