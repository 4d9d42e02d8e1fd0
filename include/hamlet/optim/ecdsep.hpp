#pragma once
// ECDSep, "ecdsep": energy-conserving descent with a separable Hamiltonian and generalised bounces.
// Source: De Luca, Gatti, Silverstein, "Improving Energy Conserving Descent for Machine Learning: Theory and
// Practice" (2023); repository gbdl/ECDSep, inflation.py (class ECDSep). docs/methods.md §7.5 has the derivation,
// edge-case table and known answers this implementation is tested against.
//
// With F the per-problem loss, F_eff = F + ½·wd·‖q‖² and V = (F_eff − F0)^η:
//
//   H = ln(s + ‖p‖²) + η·ln(F_eff − F0);   q̇ = 2p/(s + ‖p‖²),   ṗ = −η·∇F_eff/(F_eff − F0)
//   energy shell (consEn): (s + ‖p‖²)·V(q) = e^E = V(q0)·(s + δE)
//
// One update() per problem, in the original's order (‖·‖ and Σ are global over all tensors of that problem):
//   0. If the problem's iteration counter is 0: E = ln V + ln(s + δE), expE = e^E; p = −g·√(δE/‖g‖²)
//      (p = 0 when ‖g‖ = 0 or δE = 0), p2 = ‖p‖². δE is forced to 1 when s ≠ 1, as in the original.
//   1. Skip the problem (parameters and state unchanged, counter not advanced, "frozen" = 1) unless
//      F_eff − F0 > 0 and V > eps2. A skip at iteration 0 repeats the initialisation on the next call.
//   2. consEn: c = √(p2true/p2) with p2true = expE/V − s, except c = 1 when |p2true − p2| < eps1, p2true < 0 or
//      p2 = 0. Without consEn, c = 1.
//   3. Kick:  p ← c·p − Δt·η·(g + wd·q)/(F_eff − F0);  p2 ← ‖p‖².
//   4. Drift: q ← q + Δt·2p/(s + p2). Hence ‖Δq‖ ≤ Δt/√s on every step.
//   5. Direction noise (skipped when ν = 0 or ‖p‖ = 0): p ← ‖p‖·u/‖u‖ with u = p/‖p‖ + ν·z, z ~ N(0, I).
//   6. Advance the counter.
// With F0 = 0 the iterates are invariant to F → c·F.
//
// Tensors: parameters and gradients [B, ...]; `loss` is required ([B], F before the step; needs_loss() is true).
// The B problems advance independently (per-problem masks), so a batch equals its problems run one by one when
// ν = 0. Undefined gradients skip their tensor everywhere (parameter and momentum unchanged, left out of the sums).
// Noise: z is drawn on the CPU from a generator seeded with mix_seeds({seed, state.step}), so the noise of a call
// is a pure function of the `seed` option and the call count stored in the state: a run restarted from a saved
// state continues the same stream. (With ν > 0 problem i's noise depends on the batch layout.)
//
// State: slot "p" (momenta); scalars [B] "expE" (e^E), "p2" (‖p‖²), "iteration" (completed, non-skipped steps),
// all in the parameters' dtype and on their device.
// Diagnostics [B]: "energy" = ln(s + p2) + η·ln(F_eff − F0) for the incoming state (q_t, p_t), i.e. before the
// rescale (NaN where F_eff ≤ F0; under consEn it returns to E after each rescale); "frozen" = 1 where the step
// was skipped, else 0; "rescale" = c (1 where skipped).
#include <cstdint>

#include "hamlet/core/option_spec.hpp"
#include "hamlet/optim/optimizer.hpp"

namespace hamlet::optim {

struct EcdsepOptions {
  double lr = 0.1;             // Δt, > 0 (required in the original; neural-network runs used 0.04–2.8)
  double eta = 1.0;            // η, concentration exponent, >= 1 (required in the original)
  double F0 = 0.0;             // expected minimum of F, finite
  double eps1 = 1e-10;         // >= 0: skip the rescale if it would change p² by less than this
  double eps2 = 1e-40;         // >= 0: skip the step unless V > eps2
  double deltaEn = 0.0;        // δE >= 0, initial ‖p‖² (forced to 1 when s ≠ 1)
  double nu = 1e-5;            // ν >= 0, amplitude of the direction noise
  double s = 1.0;              // >= 0, kinetic regulariser in ln(s + ‖p‖²)
  double weight_decay = 0.0;   // wd >= 0, L2 term ½·wd·‖q‖² added to F (energy-conserving, not decoupled)
  bool consEn = true;          // rescale p onto the initial energy shell every step
  int64_t seed = 0;            // seed of the direction-noise stream

  // δE actually used: deltaEn when s == 1, else 1 (as the original).
  double effective_delta_en() const { return s == 1.0 ? deltaEn : 1.0; }
  HAMLET_OPTIONS(EcdsepOptions);
};

class Ecdsep final : public ConfiguredOptimizer<EcdsepOptions> {
 public:
  using ConfiguredOptimizer::ConfiguredOptimizer;
  bool needs_loss() const override { return true; }
  // p = 0, expE = p2 = iteration = 0 ([B], dtype and device of params[0]).
  OptimizerState init(const TensorList& params) const override;
  StepResult update(const TensorList& params, const TensorList& grads, const at::Tensor& loss,
                    const OptimizerState& state) const override;
};

}  // namespace hamlet::optim
