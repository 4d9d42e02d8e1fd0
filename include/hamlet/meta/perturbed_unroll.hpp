#pragma once
// Building blocks of the evolution-strategies estimators (es.hpp, pes.hpp; METHODS.md §10.2–10.4).
//
// A member is one trajectory run with perturbed weights φ ± ε. Both members of a pair start the truncation with
// the same data (problem batch and minibatch index t are shared), so their loss difference measures only the
// perturbation. Members run forward only: the optimizee gradient g_t = ∇F(θ_t) is taken by autograd with respect
// to θ alone and the update runs under NoGradGuard with weights that do not require grad, so nothing over φ is
// recorded and memory does not grow with the window.
#include <vector>

#include "hamlet/learned/learned_optimizer.hpp"
#include "hamlet/meta/meta_train.hpp"
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
// cut-off and dm term as options' meta_loss, explode_factor and window_loss say).
MemberWindow run_member(const learned::LearnedOptimizer& optimizer, const tasks::ProblemBatch& batch,
                        Trajectory& trajectory, int64_t last, double start_loss, const MetaTrainOptions& options);

// The antithetic pairs this rank runs: [first, first + count), all es_pairs of them on one rank, an equal share on
// world_size ranks (meta_train.hpp).
struct PairRange {
  std::size_t first = 0, count = 0;
  bool contains(std::size_t i) const { return i >= first && i < first + count; }
};
PairRange owned_pairs(const MetaTrainOptions& options);

// ε ~ N(0, σ² I) shaped like `like`, float64 on the CPU, drawn from `generator`.
TensorList sample_perturbation(const TensorList& like, double sigma, at::Generator& generator);

// φ + scale · ε in φ's dtype and device, plain tensors (no autograd history, not requiring grad).
TensorList perturbed(const TensorList& phi, const TensorList& eps, double scale);

// acc += scale · x (float64, CPU), entry by entry; an empty `acc` starts at zero.
void add_scaled(TensorList& acc, const TensorList& x, double scale);

}  // namespace hamlet::meta
