#pragma once
// Construction of learned optimizers by name ("phnn-paper", "phnn", "lstm") and their weight files.
//
// Weight files are HDF5 (written atomically): one dataset per weight under /weights/<name>, and attributes
// `optimizer` (registry name), `architecture`, `options` (resolved options, "k=v, ..."), `num_params`, plus any
// provenance the caller adds (task, task options, meta-training configuration, hamlet version).
#include <string>
#include <vector>

#include "hamlet/core/options.hpp"
#include "hamlet/learned/learned_optimizer.hpp"

namespace hamlet::learned {

std::vector<std::string> learned_names();
bool is_learned(const std::string& name);
// Builds a learned optimizer with freshly initialised weights (option "seed", default 0), or, when the option
// "weights" names a file, with the architecture options recorded in that file and its weights loaded. Options
// given explicitly together with "weights" must not change the architecture (clear error otherwise).
LearnedOptimizerPtr make_learned(const std::string& name, OptionMap options);

void save_weights(const std::string& path, const LearnedOptimizer& optimizer, const OptionMap& provenance = {});
// Loads weights into `optimizer`; throws naming the file if its optimizer/architecture/weight names or shapes do
// not match.
void load_weights(const std::string& path, LearnedOptimizer& optimizer);

}  // namespace hamlet::learned
