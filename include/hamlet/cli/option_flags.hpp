#pragma once
// Command-line flags generated from an options spec (core/option_spec.hpp): one flag per option, named after its
// key with '_' written '-' (meta_lr -> --meta-lr, es.pairs -> --es.pairs), with the option's help and default. The
// flags carry text; the spec parses and checks it, so a flag, an INI key and a recorded file are read by the same
// code. A bool option may be given bare (--recompute means --recompute=true).
#include <boost/program_options.hpp>

#include <string>
#include <vector>

#include "hamlet/cli/args.hpp"
#include "hamlet/core/option_spec.hpp"

namespace hamlet::cli {

std::string flag_name(const std::string& key);

void add_option_flags(boost::program_options::options_description& desc, const std::vector<OptionInfo>& options);

// The values of those flags (given or default) under the options' keys, ready for OptionSpec::from_map.
OptionMap option_flag_values(const ParsedArgs& parsed, const std::vector<OptionInfo>& options);

// Options from their flags (declared with add_option_flags(desc, Options::spec().describe(defaults))).
template <typename Options>
Options options_from_flags(const ParsedArgs& parsed, const Options& defaults = Options()) {
  return Options::spec().from_map(option_flag_values(parsed, Options::spec().describe(defaults)), defaults);
}

// Keeps the options whose key is in `keys`, in that order (a command that exposes only some of a spec's options).
std::vector<OptionInfo> select_options(const std::vector<OptionInfo>& options, const std::vector<std::string>& keys);

}  // namespace hamlet::cli
