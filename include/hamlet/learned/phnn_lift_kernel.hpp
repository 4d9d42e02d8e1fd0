#pragma once
// phnn-lift's whole update without autograd, fused (the evaluation path of PhnnLift::update, phnn_lift.hpp,
// docs/methods.md §13): the same arithmetic as the tensor expressions, written as three loops over the coordinates
// of each tensor and problem instead of a few dozen ATen operations per tensor on [B, N] and [B, N, k] pieces, the
// [R, F] feature concatenation and the [R, w] hidden units. Per tensor and problem (N coordinates):
//   1. v' = β_v v + (1 − β_v) g², m = √v' + eps (mass = constant: 1), p'_i = β_i p_i + (1 − β_i) g; H_before,
//      dissipated_power and supplied_power at the carried-in p with this step's m; the sums of squares of the raw
//      features [g, p'_1/m, .., p'_k/m, g/m]
//   2. z = those features / √(mean x² + 1e-16) (means over the N coordinates), tanh(W0 z + b0) → W2 · + b2 (the
//      time features, equal for every coordinate, are folded into b0 once per step), κ_i = 1/k + a_i, δ;
//      q̇ = −Σ_i κ_i ∂K/∂p_i(p') − (δ/m) g written into the new parameters' buffer; Σ q̇² and H_after = K(p'; m)
//   3. θ' = θ + out_mul (α û − λ θ), û = q̇ / √(mean q̇² + 1e-16) (normalise_output) or q̇
// Sums are accumulated in double. No full-size temporaries beyond the outputs (new parameters, slots "p", "v").
//
// PhnnLift::update takes this path when its option `kernel` is fused (the default), no weight requires grad (ES,
// PES and evaluation) and phnn_lift_fused_applies holds; otherwise (BPTT meta-gradients, other devices or dtypes)
// the tensor expressions, which stay the reference (tests/learned/test_phnn_lift.cpp: equal at 1e-12 in float64,
// to rounding in float32). The hidden units' tanh is std::tanh in float64 and, in float32, kernel::tanh_of
// (2σ(2x) − 1 without library calls, within 2.4e-7 of tanh) so that the float32 loops vectorise.
#include "hamlet/learned/phnn_lift.hpp"

namespace hamlet::learned {

// Throws naming what is wrong unless there is one gradient per parameter and the state has slots "p" and "v" with
// one tensor per parameter (both update paths check this first).
void check_phnn_lift_inputs(const TensorList& params, const TensorList& grads, const optim::OptimizerState& state);

// Whether phnn_lift_update_fused applies: compute options `opts` on the CPU in float32 or float64, every parameter
// of that dtype with a leading problem dimension B ≥ 1 (any per-problem shape: it is flattened to [B, N]), all on
// the CPU, and nothing requiring grad (weights, parameters, gradients, state slots).
bool phnn_lift_fused_applies(const TensorList& params, const TensorList& grads, const optim::OptimizerState& state,
                             const TensorList& weights, const at::TensorOptions& opts);

// PhnnLift::update for `options` and `weights` (PhnnLift's order, any dtype: converted to `opts`), computing in
// `opts` (the promoted dtype of weights and parameters): new parameters, slots "p" [B, S..., k] and "v" [B, S...] in
// the compute dtype, step + 1, and the diagnostics H_before, H_after, dissipated_power, supplied_power, each [B].
// Throws where the state does not fit the parameters or phnn_lift_fused_applies does not hold.
optim::StepResult phnn_lift_update_fused(const PhnnLiftOptions& options, const TensorList& weights,
                                         const TensorList& params, const TensorList& grads,
                                         const optim::OptimizerState& state, const at::TensorOptions& opts);

}  // namespace hamlet::learned
