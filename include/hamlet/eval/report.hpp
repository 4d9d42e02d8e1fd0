#pragma once
// Results of comparing methods on one task: the summary table printed by the CLI and the per-method layout of
// the run's HDF5 file (results/README.md documents the schema).
#include <optional>
#include <string>
#include <vector>

#include "hamlet/core/options.hpp"
#include "hamlet/eval/evaluate.hpp"
#include "hamlet/eval/tune.hpp"
#include "hamlet/io/h5.hpp"

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

// Writes one method under `group` (e.g. "/methods/adam"): datasets loss, final_loss, grad_norm, update_norm,
// diagnostics/<name>, tune/grid + tune/score; attributes optimizer, options, seconds and the summary values.
void write_method(io::H5Writer& writer, const std::string& group, const MethodResult& result);

}  // namespace hamlet::eval
