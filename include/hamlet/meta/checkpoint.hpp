#pragma once
// Meta-training checkpoints: the full state needed to continue a run bitwise identically (HDF5, written to a
// temporary file and renamed, so a run killed mid-write leaves the previous checkpoint intact).
//
// Layout: /weights/<i>, /best_weights/<i> (float64 copies of the optimizer's weights, restored to its dtype),
// /meta_state/step, /meta_state/slots/<name>/<i>, /meta_state/scalars/<name>, /curve [epochs, 8] (columns of
// EpochRecord in declaration order; undefined_steps, the 8th, is summed back into the total on load, and
// 7-column curves of older checkpoints read with it 0), attributes epoch, best_score, best_epoch,
// initial_score, meta_steps, skipped_steps, cut_trajectories, architecture, config (the resolved configuration
// as "key=value" lines, run_config.hpp).
#include <string>

#include "hamlet/meta/meta_train.hpp"
#include "hamlet/optim/optimizer.hpp"

namespace hamlet::meta {

struct Checkpoint {
  int64_t epoch = 0;  // completed epochs
  TensorList weights, best_weights;
  optim::OptimizerState meta_state;
  MetaTrainResult progress;  // curve, scores and counters so far (best_weights duplicated above)
  std::string architecture;
  std::string config;
};

void save_checkpoint(const std::string& path, const Checkpoint& checkpoint);
// Loads a checkpoint; tensors come back as float64 on the CPU.
Checkpoint load_checkpoint(const std::string& path);

// The curve as a [epochs, 8] float64 tensor and back.
at::Tensor curve_to_tensor(const std::vector<EpochRecord>& curve);
std::vector<EpochRecord> curve_from_tensor(const at::Tensor& values);

}  // namespace hamlet::meta
