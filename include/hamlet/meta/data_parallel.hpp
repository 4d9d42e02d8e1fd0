#pragma once
// Data-parallel meta-training (README "Data-parallel meta-training"): W ranks share every meta-batch and combine
// their estimates at the estimator / meta-step boundary (gradient_estimator.hpp), so the meta-step, its guards
// and clipping see the estimate of the whole meta-batch on every rank.
//
//   bptt      rank r unrolls problems [k·B + r·B/W, k·B + (r+1)·B/W) of episode k; its window loss is the mean
//             over its share, so the whole batch's loss and gradient are the mean over ranks.
//   es / pes  rank r runs antithetic pairs [r·P/W, (r+1)·P/W) of the P pairs on the whole batch; every rank draws
//             every pair's perturbation (so pair i has the same ε on any number of ranks) and divides by P, so
//             the whole estimate is the sum over ranks.
//
// One all-reduce per truncation carries the estimate and its diagnostics (window flag, cut flag, losses, step
// counts, which weights the loss reaches). A trajectory cut on any rank (exploding loss of its share) ends the
// episode on every rank without a meta-step; with one rank this is the single-process rule. With W = 1 nothing
// is wrapped and meta-training is bitwise the single-process one.
#include "hamlet/parallel/communicator.hpp"
#include "hamlet/meta/gradient_estimator.hpp"

namespace hamlet::meta {

class DataParallelEstimator final : public GradientEstimator {
 public:
  // `inner` estimates on this rank's share: of the problems (RankSplit::kProblems, the ranks' estimates are
  // averaged) or of its members (kMembers, summed).
  DataParallelEstimator(GradientEstimatorPtr inner, parallel::CommunicatorPtr communicator);
  std::string name() const override { return inner_->name(); }
  void start(const Episode& episode, learned::LearnedOptimizer& optimizer) override;
  bool finished() const override { return cut_ || inner_->finished(); }
  MetaGradient advance(learned::LearnedOptimizer& optimizer) override;
  RankSplit rank_split() const override { return inner_->rank_split(); }
  int64_t rank_units() const override { return inner_->rank_units(); }

 private:
  GradientEstimatorPtr inner_;
  parallel::CommunicatorPtr communicator_;
  bool cut_ = false;
};

}  // namespace hamlet::meta
