#pragma once
// Antithetic truncated evolution strategies over φ (docs/methods.md §10.3; learned_optimization `TruncatedES`).
//
// State: one carried trajectory per pair i = 1..P, all starting at the episode's θ0. Per truncation, for each
// pair: ε_i ~ N(0, σ² I_P) (fresh per pair and truncation, fixed for its steps); the positive member runs the
// window from the carried state with φ + ε_i, the negative member from the same state with φ − ε_i, on the same
// problems and minibatches; L±_i are their window losses (gradient_estimator.hpp) and
//   ĝ = (1/P) Σ_i (L⁺_i − L⁻_i) ε_i / (2σ²),
// after which the pair carries the positive member's final state (LO keeps no unperturbed trajectory). Its mean
// is the gradient of the Gaussian-smoothed window loss with the start state held constant: like truncated BPTT
// it ignores φ's effect on the state the window starts from (§10.6).
#include <vector>

#include "hamlet/meta/perturbed_unroll.hpp"

namespace hamlet::meta {

// The per-task ES combination rule of LO `compute_es_grad`: (Σ_s Δ_s m_s / Σ_s m_s) · ε / (2σ²), where Δ_s is
// the loss difference of step s and m_s its validity mask. A task with Σ m = 0 contributes zeros. Float64.
TensorList es_combine(const std::vector<double>& delta, const std::vector<double>& mask, const TensorList& eps,
                      double sigma);

class TruncatedEs : public AntitheticEstimator {
 public:
  TruncatedEs(const ScheduleOptions& schedule, const EsOptions& options, const parallel::DistributedOptions& parallel)
      : AntitheticEstimator(schedule, options, parallel, "es") {}

 protected:
  TensorList combine(std::size_t pair, const std::vector<double>& delta, const TensorList& eps) override;
  // LO keeps no unperturbed trajectory: the pair goes on from its positive member's state.
  void after_pair(std::size_t pair) override { negative_[pair] = positive_[pair]; }
};

}  // namespace hamlet::meta
