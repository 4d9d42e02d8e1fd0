#pragma once
// The meta-optimizer step (docs/methods.md §4.3): Adam (β 0.9/0.999, eps 1e-8) on φ with an estimator's meta-gradient,
// behind three guards, applied in this order:
//   1. every entry of the estimate undefined (the window's loss does not reach φ): no step, counted as undefined;
//      otherwise undefined entries are zeros;
//   2. non-finite window loss or meta-gradient norm: no step, counted as skipped (logged by the caller);
//   3. norm clipping: with clip > 0 a gradient of norm > clip is scaled to norm clip.
// After a step the optimizer holds the new weights as leaves that require grad (ready for the next window).
#include <cstdint>

#include "hamlet/learned/learned_optimizer.hpp"
#include "hamlet/meta/gradient_estimator.hpp"
#include "hamlet/optim/optimizer.hpp"

namespace hamlet::meta {

struct MetaStepOutcome {
  enum class Kind { kTaken, kNonFinite, kUndefined };
  Kind kind = Kind::kUndefined;
  double loss = 0;       // window loss L
  double meta_loss = 0;  // L / terms
  double grad_norm = 0;  // before clipping
};

class MetaOptimizerStep {
 public:
  MetaOptimizerStep(double meta_lr, double clip);
  // Fresh Adam state for `weights`.
  void init(const TensorList& weights);
  optim::OptimizerState& state() { return state_; }
  const optim::OptimizerState& state() const { return state_; }
  MetaStepOutcome apply(learned::LearnedOptimizer& optimizer, const MetaGradient& gradient);

 private:
  optim::OptimizerPtr adam_;
  double clip_;
  optim::OptimizerState state_;
};

}  // namespace hamlet::meta
