#pragma once
// Choosing among meta-trained weights that differ in a meta-training knob (issue "Statistics a reviewer accepts":
// the learned optimizers' knobs, e.g. phnn's meta-learning rate, get the baselines' care).
//
// Each candidate is a weight file written by `hamlet meta-train`, whose provenance holds `best_score`: the mean
// final loss of the run's validation problems under its selected weights (MetaTrainResult::best_score, the score
// meta-training already selects epochs by). The candidate with the lowest score is chosen (ties: the first given),
// the rule the baselines' learning-rate tuner applies to its grid (eval/tune.hpp) on validation problems, never on
// test problems. A non-finite score (a diverged run) never wins unless every candidate has one, which is an error.
//
// The scores are comparable only on the same validation problems of the same task, so the candidates must agree
// on: optimizer, architecture, task, every task option except data_source / data_dir (where the data were read
// from), and the meta-training keys horizon, validation_problems, validation_seed. Anything else may differ (the
// knob: meta_lr, epochs, unroll, an optimizer option such as out_mul, the seed); the keys that differ are reported.
// An error names the first disagreeing key with both files and values. A key that only some files hold (an option
// added to hamlet after the others were written, at its default there) is neither compared nor reported.
#include <cstddef>
#include <string>
#include <vector>

#include "hamlet/core/options.hpp"

namespace hamlet::meta {

struct WeightCandidate {
  std::string path;
  double best_score = 0;  // provenance `best_score` (NaN when not finite)
  // This file's values of the varied keys ("meta_train.meta_lr", "optimizer.out_mul", ...).
  OptionMap varied;
};

struct WeightSelection {
  std::vector<WeightCandidate> candidates;  // in the order given
  std::size_t chosen = 0;                   // index into candidates
  std::vector<std::string> varied_keys;     // keys whose values are not the same in every candidate, sorted
};

// Reads the files' provenance and chooses as above. Throws hamlet::Error for no files, a file without a
// meta-training provenance (no best_score), candidates that disagree, or no finite score.
WeightSelection select_weights(const std::vector<std::string>& weight_files);

// The selection as a JSON object: {"rule", "chosen": path, "varied_keys": [...], "candidates": [{"path",
// "best_score" (null when not finite), "varied": {...}, "chosen": bool}]}.
std::string selection_to_json(const WeightSelection& selection);

}  // namespace hamlet::meta
