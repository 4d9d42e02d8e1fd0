#pragma once
// The estimator interface of meta-training (docs/methods.md §10): advance the trajectories in flight by one
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
// Contract: advance() leaves the optimizer's weights as it found them (values and requires_grad), also when it
// throws; perturbed members hold their weights through a WeightSwap guard (learned/learned_optimizer.hpp).
//
// Estimators are built by name from the registry below, each from the schedule (meta_options.hpp ScheduleOptions),
// its own part of EstimatorOptions and the ranks it runs on. A new estimator is a header and a source file plus one
// line in estimators() (src/meta/gradient_estimator.cpp), or a register_estimator() call from outside hamlet
// (docs/extending.md). The episode ends after its last window or when a trajectory is
// cut (explode_factor); windows that no meta-step uses (the partial last window without train_tail, a window
// interrupted by a cut) return window = false.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "hamlet/core/registry.hpp"
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

// What data-parallel ranks divide (data_parallel.hpp): kProblems, each rank runs an equal share of every episode's
// B problems (the sampler hands it its share; the ranks' estimates are averaged); kMembers, each rank runs an
// equal share of the estimator's own members (e.g. antithetic pairs) on all B problems (the estimates are summed).
enum class RankSplit { kProblems, kMembers };

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
  // How the ranks share the work, and how many units of it there are (B problems, or P pairs); the units must be
  // a multiple of the number of ranks (constructors check it with check_rank_units).
  virtual RankSplit rank_split() const = 0;
  virtual int64_t rank_units() const = 0;
};

using GradientEstimatorPtr = std::unique_ptr<GradientEstimator>;

// A registered estimator: how to build it (from options.schedule, options.parallel and its own part of
// options.estimator only), and which EstimatorOptions keys it reads: every other estimator option must keep its
// default, so a setting the run would ignore is refused instead.
struct EstimatorEntry {
  std::function<GradientEstimatorPtr(const MetaTrainOptions&)> make;
  std::vector<std::string> reads;
};

// The registry: bptt, es, pes, then any registered at run time.
const Registry<EstimatorEntry>& estimators();
void register_estimator(const std::string& name, EstimatorEntry entry);
// "meta-gradient estimator: bptt | es | pes", for --help.
std::string estimator_help();

// Builds options.estimator.name with the parallel share of options.parallel. Throws on an unknown name or when its
// work does not divide among the ranks.
GradientEstimatorPtr make_estimator(const MetaTrainOptions& options);

// Throws unless `units` (named `what`, e.g. "meta_train.batch") divide among `world_size` ranks; `why` says what the
// estimator shares ("bptt gives every rank an equal share of each episode's problems").
void check_rank_units(const std::string& what, int64_t units, int64_t world_size, const std::string& why);

// The EstimatorOptions rule: options of estimators other than the chosen one keep their defaults.
void check_unread_estimator_options(const std::string& owner, const EstimatorOptions& options);

}  // namespace hamlet::meta
