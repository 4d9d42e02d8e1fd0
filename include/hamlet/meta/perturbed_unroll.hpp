#pragma once
// Building blocks of the evolution-strategies estimators (es.hpp, pes.hpp; docs/methods.md §10.2–10.4).
//
// A member is one trajectory run with perturbed weights φ ± ε. Both members of a pair start the truncation with
// the same data (problem batch and minibatch index t are shared), so their loss difference measures only the
// perturbation. Members run forward only: the optimizee gradient g_t = ∇F(θ_t) is taken by autograd with respect
// to θ alone and the update runs under NoGradGuard with weights that do not require grad, so nothing over φ is
// recorded and memory does not grow with the window.
#include <string>
#include <vector>

#include "hamlet/learned/learned_optimizer.hpp"
#include "hamlet/meta/gradient_estimator.hpp"
#include "hamlet/meta/trajectory.hpp"

namespace hamlet::meta {

// Losses of one member over one window.
struct MemberWindow {
  std::vector<double> terms;  // mean_B of the meta-loss term (meta_loss_term) at each step t = first..last (+ after
                              // the last update with dm)
  bool exploded = false;      // stopped early: a loss was non-finite or above factor × start loss
  int64_t steps = 0;          // updates applied (each is B problem-steps)
  double sum() const;
};

// Runs `trajectory` from its step through step `last` with the weights the optimizer holds now (the loss terms,
// cut-off and dm term as the schedule's meta_loss, explode_factor and window_loss say).
MemberWindow run_member(const learned::LearnedOptimizer& optimizer, const tasks::ProblemBatch& batch,
                        Trajectory& trajectory, int64_t last, double start_loss, const ScheduleOptions& schedule);

// The antithetic pairs this rank runs: [first, first + count), all `pairs` of them on one rank, an equal share on
// world_size ranks.
struct PairRange {
  std::size_t first = 0, count = 0;
  bool contains(std::size_t i) const { return i >= first && i < first + count; }
};
PairRange owned_pairs(int64_t pairs, const parallel::DistributedOptions& parallel);

// ε ~ N(0, σ² I) shaped like `like`, float64 on the CPU, drawn from `generator`.
TensorList sample_perturbation(const TensorList& like, double sigma, at::Generator& generator);

// φ + scale · ε in φ's dtype and device, plain tensors (no autograd history, not requiring grad).
TensorList perturbed(const TensorList& phi, const TensorList& eps, double scale);

// acc += scale · x (float64, CPU), entry by entry; an empty `acc` starts at zero.
void add_scaled(TensorList& acc, const TensorList& x, double scale);

// What es and pes share: P antithetic pairs of members, each pair a positive trajectory run with φ + ε_i and a
// negative one with φ − ε_i on the same problems and minibatches; per truncation every pair draws a fresh ε_i
// (all ranks draw all of them, so pair i sees the same ε wherever it runs), runs its window and hands the per-step
// loss differences Δ_s to combine(); the estimate is (1/P) Σ_i combine_i · (steps in the window). The perturbed
// weights are held by a WeightSwap guard, so the optimizer keeps its own weights whatever happens.
class AntitheticEstimator : public GradientEstimator {
 public:
  // Throws unless es.pairs divides among parallel.world_size ranks (each runs its share of the pairs).
  AntitheticEstimator(const ScheduleOptions& schedule, const EsOptions& options,
                      const parallel::DistributedOptions& parallel, const std::string& name);
  // The registry name given at construction ("es", "pes").
  std::string name() const override { return name_; }
  void start(const Episode& episode, learned::LearnedOptimizer& optimizer) override;
  bool finished() const override { return finished_; }
  MetaGradient advance(learned::LearnedOptimizer& optimizer) override;
  RankSplit rank_split() const override { return RankSplit::kMembers; }
  int64_t rank_units() const override { return options_.pairs; }

 protected:
  // Pair i's estimate of the gradient (float64, the weights' shapes) from the per-step differences of its window,
  // averaged over the steps; called once per pair and truncation, in pair order.
  virtual TensorList combine(std::size_t pair, const std::vector<double>& delta, const TensorList& eps) = 0;
  // After pair i's window (es carries the positive member into both).
  virtual void after_pair(std::size_t pair) {}
  // At the start of an episode, after the members are reset (pes clears its accumulators).
  virtual void on_start() {}

  ScheduleOptions schedule_;
  EsOptions options_;
  std::string name_;
  std::vector<Trajectory> positive_, negative_;  // one each per pair

 private:
  MemberWindow run_perturbed(learned::LearnedOptimizer& optimizer, const TensorList& phi, const TensorList& eps,
                             double sign, Trajectory& trajectory, int64_t last) const;

  PairRange mine_;
  Episode episode_;
  at::Generator generator_;
  double start_loss_ = 0;
  int64_t step_ = 0;
  bool finished_ = true;
};

}  // namespace hamlet::meta
