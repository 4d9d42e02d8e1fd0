#pragma once
// Construction of learned optimizers by name ("phnn-paper", "phnn", "lstm", "mlp-lopt", "phnn-features") and their weight files.
//
// Weight files are HDF5 (written atomically): one dataset per weight under /weights/<name>, and attributes
// `optimizer` (registry name), `architecture`, `options` (resolved options, "k=v, ..."), `num_params`, plus any
// provenance the caller adds (task, task options, meta-training configuration, hamlet version).
//
// Weights are stored as float64 whatever the optimizer's dtype, so save → load is bitwise for float32 and
// float64 weights. The recorded `options` never include "weights" (a file does not point at another file).
// Options of each optimizer are the fields of its options struct (PhnnPaperOptions, PhnnOptions, LstmOptions, MlpLoptOptions;
// PhnnOptions with phnn_features_defaults() for phnn-features);
// the architecture-defining ones (their architecture_keys(): preprocess, mass_factor, keep_unused_L_bias for
// phnn-paper; preprocess, hidden, mass, dissipation, d_softplus, inputs, readout for phnn and phnn-features; preprocess, hidden for lstm;
// hidden, hidden_layers for mlp-lopt) must agree
// with a loaded file, the others (out_mul, norm, h, dtype, ...) may be changed at load time.
#include <string>
#include <vector>

#include "hamlet/core/option_spec.hpp"
#include "hamlet/core/options.hpp"
#include "hamlet/learned/learned_optimizer.hpp"

namespace hamlet::learned {

std::vector<std::string> learned_names();
bool is_learned(const std::string& name);
// The options `name` takes, with its defaults and help.
const std::vector<OptionInfo>& learned_options(const std::string& name);
// Builds a learned optimizer with freshly initialised weights (option "seed", default 0), or, when the option
// "weights" names a file, with the options recorded in that file as defaults and its weights loaded. Options
// given explicitly together with "weights" must not change the architecture (error naming the option and the
// file). Unknown names and unknown or invalid options throw hamlet::Error listing the valid ones.
LearnedOptimizerPtr make_learned(const std::string& name, OptionMap options);

// Provenance keys become string attributes on "/"; the four reserved names above are rejected.
void save_weights(const std::string& path, const LearnedOptimizer& optimizer, const OptionMap& provenance = {});
// Loads weights into `optimizer` (converted to its dtype, on the device of its current weights, keeping whether
// they require grad); throws naming the file if it is missing or its optimizer/architecture/weight names or
// shapes do not match.
void load_weights(const std::string& path, LearnedOptimizer& optimizer);

}  // namespace hamlet::learned
