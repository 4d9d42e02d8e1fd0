#pragma once
// Results of comparing methods on one task: the summary table printed by the CLI and each method's record of the
// run file (io/run_file.hpp writes it; docs/file_formats.md documents the schema).
#include <optional>
#include <string>
#include <vector>

#include "hamlet/core/options.hpp"
#include "hamlet/eval/evaluate.hpp"
#include "hamlet/eval/tune.hpp"
#include "hamlet/io/run_file.hpp"

namespace hamlet::eval {

struct MethodResult {
  std::string name;          // row label, e.g. "adam"
  OptionMap options;         // resolved optimizer options (with the learning rate used)
  Trajectory trajectory;
  Summary summary;
  std::optional<TuneResult> tuning;  // present when the learning rate was tuned
};

// Markdown table: method, lr (out_mul for learned optimizers), final loss mean ± SE, median, mean over steps ± SE, non-finite runs, and the paired
// difference of the final loss against the best method (by final mean) ± SE.
std::string summary_table(const std::vector<MethodResult>& results);

// One method as the run file records it: curves, options, seconds, the summary values and the tuning grid.
io::MethodRecord to_record(const MethodResult& result);
// A learning-rate search alone (`hamlet tune` files).
io::TuneRecord to_record(const TuneResult& tuning);

}  // namespace hamlet::eval
