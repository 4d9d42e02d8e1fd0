#pragma once
// Meta-training checkpoints: the full state needed to continue a run bitwise identically (HDF5, written to a
// temporary file and renamed, so a run killed mid-write leaves the previous checkpoint intact).
//
// The file (layout, schema versions, older layouts) is io/checkpoint_file.hpp's; this header converts the
// meta-training state to and from its record. Weights and meta-optimizer state come back as float64 on the CPU,
// restored to the optimizer's dtype by the caller.
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

// The curve as a [epochs, 8] float64 tensor (columns of EpochRecord in declaration order) and back; a value of a
// count column that is no count (NaN, negative, fractional) is an error.
at::Tensor curve_to_tensor(const std::vector<EpochRecord>& curve);
std::vector<EpochRecord> curve_from_tensor(const at::Tensor& values);
// The components' validation scores of every epoch of a distribution of tasks (EpochRecord::component_scores) as
// a [epochs, K] float64 tensor, undefined when the curve has none (a single task); and back into `curve`, whose
// rows it must match (throws hamlet::Error otherwise). Every epoch of a curve has the same K or none.
at::Tensor component_scores_to_tensor(const std::vector<EpochRecord>& curve);
void component_scores_from_tensor(const at::Tensor& scores, std::vector<EpochRecord>& curve);

}  // namespace hamlet::meta
