#pragma once
// Persistent evolution strategies (docs/methods.md §10.4; Vicol, Metz, Sohl-Dickstein 2021; learned_optimization
// `TruncatedPES`).
//
// State per pair i = 1..P: two persistent trajectories s⁺_i and s⁻_i (both start at the episode's θ0) and the
// accumulated perturbation ξ_i ∈ ℝ^P (starts at 0). Per truncation: ε_i ~ N(0, σ² I); s⁺_i runs its window with
// φ + ε_i and s⁻_i with φ − ε_i, each from its own state, on the same problems and minibatches; Δ_s is the
// difference of their step-s loss terms; ξ'_i = ξ_i + ε_i (accumulated before weighting) and
//   ĝ = (1/P) Σ_i (Σ_s Δ_s) ξ'_i / (2σ²),        ξ_i ← ξ'_i.
// Because member ± has been driven by ±(ε_1 + … + ε_j) up to truncation j, Stein's lemma makes E[ĝ_j] the total
// derivative of the smoothed window loss with respect to φ, including φ's effect on the state the window starts
// from; the sum over an episode's truncations is unbiased for the gradient of the smoothed episode loss (§10.6).
// It pays in variance, which grows with the number of truncations j.
//
// Episodes in hamlet end exactly at a window boundary, so no reset happens inside a truncation; the next episode
// starts new trajectories with ξ = 0. pes_combine() implements LO's general rule (masks, resets inside a
// truncation) and is what the estimator evaluates, with all steps valid and none done.
#include <vector>

#include "hamlet/meta/perturbed_unroll.hpp"

namespace hamlet::meta {

struct PesCombination {
  TensorList grad;     // (a ξ' + c ε) / (2σ²), float64
  TensorList xi_next;  // ε if an episode ended in the truncation (h_K = 1), else ξ' = ξ + ε
};

// LO `compute_pes_grad` for one task: h_s = 1 if some is_done occurred at a step <= s (inclusive, LO's
// behaviour), D = Σ m_s, a = Σ Δ_s m_s (1 − h_s) / D, c = Σ Δ_s m_s h_s / D. D = 0 contributes zeros
// (LO divides by zero there) and still updates the accumulator.
PesCombination pes_combine(const std::vector<double>& delta, const std::vector<double>& mask,
                           const std::vector<bool>& is_done, const TensorList& xi_old, const TensorList& eps,
                           double sigma);

class PersistentEs : public AntitheticEstimator {
 public:
  PersistentEs(const ScheduleOptions& schedule, const EsOptions& options, const parallel::DistributedOptions& parallel)
      : AntitheticEstimator(schedule, options, parallel, "pes") {}

 protected:
  TensorList combine(std::size_t pair, const std::vector<double>& delta, const TensorList& eps) override;
  void on_start() override { xi_.assign(positive_.size(), TensorList()); }

 private:
  std::vector<TensorList> xi_;  // accumulated perturbation per pair (float64, CPU)
};

}  // namespace hamlet::meta
