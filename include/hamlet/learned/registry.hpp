#pragma once
// Construction of learned optimizers by name ("phnn-paper", "phnn", "lstm", "mlp-lopt", "phnn-features"), fresh or
// from trained weights.
//
// This module knows no files: weights files are read and written by io (hamlet/io/weights_file.hpp), and
// interop/learned_files.hpp combines the two (the option "weights=PATH" of the CLI, TorchOptimizer and Python).
// TrainedWeights is what a weights file holds, as this module sees it.
//
// The recorded options never include "weights" (a file does not point at another file). Options of each optimizer
// are the fields of its options struct (PhnnPaperOptions, PhnnOptions, LstmOptions, MlpLoptOptions;
// PhnnOptions with phnn_features_defaults() for phnn-features);
// the architecture-defining ones (their architecture_keys(): preprocess, mass_factor, keep_unused_L_bias for
// phnn-paper; preprocess, hidden, mass, dissipation, d_softplus, inputs, readout for phnn and phnn-features; preprocess, hidden for lstm;
// hidden, hidden_layers for mlp-lopt) must agree
// with loaded weights, the others (out_mul, norm, h, dtype, ...) may be changed at load time.
#include <string>
#include <vector>

#include "hamlet/core/option_spec.hpp"
#include "hamlet/core/options.hpp"
#include "hamlet/core/tensor.hpp"
#include "hamlet/learned/learned_optimizer.hpp"

namespace hamlet::learned {

std::vector<std::string> learned_names();
bool is_learned(const std::string& name);
// The options `name` takes, with its defaults and help.
const std::vector<OptionInfo>& learned_options(const std::string& name);

// Trained weights and the optimizer they were trained for (io::WeightsRecord carries the same from a file).
struct TrainedWeights {
  std::string source;              // where they come from (a weights file's path): named in errors, and kept as
                                   // the built optimizer's "weights" option (provenance)
  std::string optimizer;           // registry name
  std::string architecture;        // LearnedOptimizer::architecture() of the trained optimizer
  OptionMap options;               // the options it was trained with (without "weights")
  std::vector<std::string> names;  // weight names, names[i] <-> values[i], in any order
  TensorList values;               // any floating dtype and device (float64 CPU copies from trained_weights)
};

// Builds a learned optimizer with freshly initialised weights (option "seed", default 0). Unknown names and
// unknown or invalid options throw hamlet::Error listing the valid ones; so does a non-empty option "weights"
// (a file: interop::make_learned reads it).
LearnedOptimizerPtr make_learned(const std::string& name, OptionMap options);
// Builds `name` from trained weights: their recorded options are the defaults, `options` given explicitly may
// change behaviour (out_mul, h, ...) but not the architecture (error naming the option and trained.source); the
// weights are then set as set_trained_weights does.
LearnedOptimizerPtr make_learned(const std::string& name, OptionMap options, const TrainedWeights& trained);

// The optimizer's weights (float64 CPU copies, so a round trip through a file is bitwise) and options.
TrainedWeights trained_weights(const LearnedOptimizer& optimizer);
// Sets the weights of `optimizer` from `trained` (converted to its dtype, on the device of its current weights,
// keeping whether they require grad); throws naming trained.source when the optimizer, the architecture, the
// weight names or shapes do not match.
void set_trained_weights(LearnedOptimizer& optimizer, const TrainedWeights& trained);

}  // namespace hamlet::learned
