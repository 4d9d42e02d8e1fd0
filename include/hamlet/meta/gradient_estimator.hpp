#pragma once
// The estimator interface of meta-training (METHODS.md §10): advance the trajectories in flight by one
// truncation and return an estimate of the meta-gradient with its diagnostics.
//
// The meta-loss of a truncation (window) is the same for every estimator, the §4.1 window loss
//   L(φ) = Σ_{t in window} mean_B F(θ_t)   (+ mean_B F(θ_{after last update}) with window_loss = dm),
// so meta-learning rates mean the same thing whatever estimates ∇_φ L:
//   bptt (bptt.hpp)  exact ∂L/∂φ through the window with its start state held constant (truncated BPTT);
//   es   (es.hpp)    antithetic ES over φ per truncation, forward passes only;
//   pes  (pes.hpp)   persistent ES: per-pair accumulated perturbations make the sum of the truncations'
//                    estimates unbiased for the gradient of the smoothed whole-episode loss.
//
// One call = one truncation. The meta-training loop (epoch_trainer.hpp) is
//   estimator.start(episode); while (!estimator.finished()) meta_step.apply(optimizer, estimator.advance(optimizer));
// and data-parallel execution plugs in at that single advance/apply boundary.
//
// Contract: advance() leaves the optimizer's weights as it found them (values and requires_grad); it may use
// set_weights() internally for perturbed members. The episode ends after its last window or when a trajectory is
// cut (explode_factor); windows that no meta-step uses (the partial last window without train_tail, a window
// interrupted by a cut) return window = false.
#include <cstdint>
#include <memory>
#include <string>

#include "hamlet/learned/learned_optimizer.hpp"
#include "hamlet/meta/meta_train.hpp"
#include "hamlet/meta/trajectory.hpp"

namespace hamlet::meta {

struct MetaGradient {
  bool window = false;   // a window closed: a meta-step is due with `grads`
  TensorList grads;      // estimate of ∂L/∂φ, one per weight, the weights' dtype; undefined = no dependence on it
  at::Tensor loss;       // bptt: the differentiated window loss (kept so the meta-step reads it as before)
  double meta_loss = 0;  // window loss L (es / pes: mean over pairs of (L⁺ + L⁻)/2)
  int64_t terms = 0;     // terms in L (the reported meta-loss is meta_loss / terms)
  int64_t optimizee_steps = 0;  // problem-steps taken by this call (every member counted)
  bool cut = false;             // the episode was cut for exploding loss during this call
  double delta_abs_mean = 0;    // es / pes: mean over pairs of |L⁺ − L⁻| (a noise diagnostic)
};

class GradientEstimator {
 public:
  virtual ~GradientEstimator() = default;
  virtual std::string name() const = 0;
  // Starts the episode's trajectories (all members at θ0; PES accumulators at 0).
  virtual void start(const Episode& episode, learned::LearnedOptimizer& optimizer) = 0;
  // True once the episode's last window has been run (or it was cut).
  virtual bool finished() const = 0;
  // Runs the next truncation and returns its estimate.
  virtual MetaGradient advance(learned::LearnedOptimizer& optimizer) = 0;
};

using GradientEstimatorPtr = std::unique_ptr<GradientEstimator>;

// bptt | es | pes, configured from the meta-training options (checked by MetaTrainOptions::validate).
GradientEstimatorPtr make_estimator(const MetaTrainOptions& options);

}  // namespace hamlet::meta
