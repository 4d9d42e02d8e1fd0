#pragma once
// Weight-reparametrisation task augmentation (Metz et al. 2022, "Practical tradeoffs between memory, compute, and
// performance in learned optimizers", §4: the augmentations small_fc_lopt is meta-trained with;
// google/learned_optimization `tasks/task_augmentation.py`, ReparamWeights): problem b's parameter tensor k is
// optimised in the coordinates θ'_k = θ_k / s_{b,k}, so
//
//   F'(θ') = F(s ⊙ θ'),   ∇F'(θ') = s ⊙ ∇F(s ⊙ θ'),   θ'_0 = θ_0 / s,
//
// the same problem with gradients and parameters rescaled per tensor: an optimizer meta-trained on it cannot rely
// on one gradient scale. s_{b,k} = 10^u, u ~ U(−r, r), drawn per problem and tensor from (seed, problem index).
#include <memory>

#include "hamlet/tasks/task.hpp"

namespace hamlet::tasks {

class ReparamBatch final : public ProblemBatch {
 public:
  // scales: one per parameter tensor, [B, 1, ...] broadcastable against it, positive.
  ReparamBatch(std::shared_ptr<const ProblemBatch> inner, TensorList scales);
  int64_t size() const override { return inner_->size(); }
  TensorList initial_params() const override;
  at::Tensor loss(const TensorList& params, int64_t step) const override;
  std::vector<std::string> param_names() const override { return inner_->param_names(); }
  const TensorList& scales() const { return scales_; }

 private:
  std::shared_ptr<const ProblemBatch> inner_;
  TensorList scales_;
};

// Wraps problems [first, first + B) of `inner` with scales 10^U(−decades, decades) drawn from (seed, problem index):
// a problem keeps its scales whatever batch or rank it is drawn in. decades must be > 0.
std::unique_ptr<ProblemBatch> reparametrise(std::shared_ptr<const ProblemBatch> inner, double decades, uint64_t seed,
                                            int64_t first);

}  // namespace hamlet::tasks
