// `hamlet select`: the meta-trained weights with the best validation score among candidates (meta/select_weights.hpp).
#include <spdlog/spdlog.h>

#include <iostream>

#include "commands.hpp"
#include "hamlet/core/error.hpp"
#include "hamlet/core/output_file.hpp"
#include "hamlet/meta/select_weights.hpp"

namespace po = boost::program_options;

namespace hamlet::cli {

int cmd_select(const std::vector<std::string>& args) {
  po::options_description desc(
      "hamlet select: of weight files written by `hamlet meta-train` that differ in a meta-training knob (meta-lr, "
      "epochs, out_mul, ...) but share task and validation problems, the one with the lowest validation score. "
      "Prints its path on standard output (for scripts)");
  desc.add_options()("weights", po::value<std::vector<std::string>>()->composing(),
                     "a candidate weight file (repeat for each)")(
      "out", po::value<std::string>()->default_value(""),
      "also write the selection (every candidate's score and varied keys, the choice) as JSON to this file")(
      "log-level", po::value<std::string>()->default_value("info"), "trace | debug | info | warn | error");
  const ParsedArgs parsed = parse_args(args, desc, {}, "select");
  if (print_help_or_config(parsed, desc)) return 0;
  const auto& v = parsed.values;
  const std::string out = v["out"].as<std::string>();
  if (!out.empty()) check_output_path(out, "--out");
  spdlog::set_level(spdlog::level::from_str(v["log-level"].as<std::string>()));
  HAMLET_CHECK(v.count("weights"), "hamlet select needs at least one --weights=FILE.h5");
  const auto selection = meta::select_weights(v["weights"].as<std::vector<std::string>>());
  for (std::size_t i = 0; i < selection.candidates.size(); ++i) {
    const auto& c = selection.candidates[i];
    std::string varied;
    for (const auto& [k, value] : c.varied) varied += (varied.empty() ? "" : ", ") + k + "=" + value;
    spdlog::info("{} {}: validation score {}{}", i == selection.chosen ? "*" : " ", c.path, c.best_score,
                 varied.empty() ? "" : " (" + varied + ")");
  }
  if (!out.empty()) write_atomically(out, meta::selection_to_json(selection));
  std::cout << selection.candidates[selection.chosen].path << "\n";
  return 0;
}

}  // namespace hamlet::cli
