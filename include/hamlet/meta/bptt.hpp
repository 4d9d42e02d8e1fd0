#pragma once
// Truncated back-propagation through time (docs/methods.md §4.1–4.2; learned_optimization `TruncatedGrad`).
//
// One window: for each step t, f_t = F(θ_t) with θ_t a leaf if it has no history, g_t = ∇F(θ_t) (create_graph
// with second_derivatives), θ_{t+1} = update(θ_t, g_t) (re-run in the backward with recompute); the window loss
// accumulates mean_B f_t. With recompute the window runs as stretches of ⌈√U⌉ steps, each one checkpointed node
// (recompute.hpp), the same computation re-run in the meta-backward. At the window's end the gradient ∂L/∂φ is taken by autograd (allow_unused: a weight
// the loss does not reach stays undefined) and θ and the state are detached, so the next window holds its start
// state constant. Exactly the computation of hamlet's original trainer, operation for operation.
#include "hamlet/meta/gradient_estimator.hpp"

namespace hamlet::meta {

class TruncatedBptt : public GradientEstimator {
 public:
  // Throws unless schedule.batch divides among parallel.world_size ranks (each runs its share of the problems).
  TruncatedBptt(const ScheduleOptions& schedule, const BpttOptions& options, const parallel::DistributedOptions& parallel);
  std::string name() const override { return "bptt"; }
  void start(const Episode& episode, learned::LearnedOptimizer& optimizer) override;
  bool finished() const override { return finished_; }
  MetaGradient advance(learned::LearnedOptimizer& optimizer) override;
  RankSplit rank_split() const override { return RankSplit::kProblems; }
  int64_t rank_units() const override { return schedule_.batch; }

 private:
  // Step t of the window from θ_t (params and state advanced in place): f_t, its loss term added to `acc`, g_t and
  // the update. Returns false when the loss explodes (counts->cut set). `counts` (terms, problem-steps, the start
  // loss) is null when a checkpointed stretch is replayed in the meta-backward, so nothing is counted twice.
  bool run_step(learned::LearnedOptimizer& optimizer, TensorList& params, optim::OptimizerState& state, int64_t t,
                at::Tensor& acc, MetaGradient* counts);

  ScheduleOptions schedule_;
  BpttOptions options_;
  Episode episode_;
  Trajectory trajectory_;
  double start_loss_ = 0;
  bool finished_ = true;
};

}  // namespace hamlet::meta
