#pragma once
// Per-parameter MLP learned optimizer ("mlp-lopt") of Metz, Freeman, Harrison, Maheswaranathan and
// Sohl-Dickstein 2022, "Practical tradeoffs between memory, compute, and performance in learned optimizers"
// (CoLLAs 2022, arXiv 2203.11860): the `AdafacMLPLOpt` of google/learned_optimization, called small_fc_lopt by
// μLO (Thérien et al. 2024). Equations, defaults and the known answer: docs/methods.md §11.
//
// Per parameter tensor p [B, S...] with gradient g (every problem b on its own; S is the per-problem shape):
//   accumulators, updated first:  m_k ← β^m_k m_k + (1−β^m_k) g                      (k = 0, 1, 2; not clipped)
//                                 v   ← β̃^v v + (1−β̃^v) g²                           (β̃ = clip(β, 0, 1))
//     rank(S) ≥ 2 ("factored", Adafactor): with q = g² + 1e-30, d0 the largest axis of S and d1 the second
//     largest (stable ascending argsort: ties put d1 before d0),
//                                 R_k ← β̃^f_k R_k + (1−β̃^f_k) mean_{d0} q,   C_k ← β̃^f_k C_k + (1−β̃^f_k) mean_{d1} q
//                                 F_k = max(R_k / (mean_{d1} R_k + 1e-9), 1e-9)^{−1/2} · max(C_k, 1e-9)^{−1/2}
//     rank(S) ≤ 1:                V_k ← β̃^f_k V_k + (1−β̃^f_k) q,   F_k = max(V_k + 1e-9, 1e-9)^{−1/2}
//   28 features per coordinate (the table of docs/methods.md §11.5: g, p, m, v, m·rs, rs with rs = (v + 1e-6)^{−1/2},
//   g·F, the factored accumulators and their inverse roots, m·F), each channel divided by its RMS over the tensor,
//   x̄ = x / √(1e-5 + mean_S x²), then 11 time features tanh(t/s − 1), s ∈ {1, 3, 10, ..., 10⁵}, t = state.step;
//   [d, μ] = MLP(x̄) with 39 → 4 → 4 → 2, ReLU after the hidden layers, linear output;
//   θ ← θ − out_mul · d · exp(exp_mult · μ) · step_mult.
//
// Meta-parameters φ (197 with the defaults), in order: mlp.0.w [39, H], mlp.0.b [H], mlp.1.w [H, H], mlp.1.b [H],
// mlp.2.w [H, 2], mlp.2.b [2] (input-major, h = x W + b, as the reference), momentum_decays [3], rms_decays [1],
// adafactor_decays [3]. A decay parameter φ_d gives β = 1 − (1 − β_init)·exp(10 φ_d) with β_init = (0.9, 0.99,
// 0.999), (0.999), (0.9, 0.99, 0.999); they start at 0. MLP weights start as TN(−2, 2)/√fan_in (a standard normal
// truncated to [−2, 2] without variance correction, as dm-haiku), biases at 0.
//
// State: slots "m" [B, S..., 3], "v" [B, S..., 1] and "fac" [B, K, 3], the Adafactor accumulators of the tensor
// flattened: for a factored tensor R (S without d0, row-major) followed by C (S without d1), K = N/n_d0 + N/n_d1;
// for a rank ≤ 1 tensor V, K = N. All start at zero; t is OptimizerState::step (updates already applied), shared
// by all tensors. A per-problem scalar parameter ([B]) is processed as shape [1].
//
// Where hamlet differs from the reference: out_mul (default 1, the reference has none) is the output scale the
// tuner scans, as for the other learned optimizers; the problem index leads every tensor (B problems in one
// program); the rows of all tensors go through the MLP as one batch, and the time features, equal for every
// coordinate, enter layer 0 through its bias (the same function). The paper's training-horizon input is absent,
// as in the reference.
#include <string>
#include <vector>

#include "hamlet/core/option_spec.hpp"
#include "hamlet/learned/learned_optimizer.hpp"

namespace hamlet::learned {

// Number of normalised per-coordinate features and of time features (docs/methods.md §11.5).
inline constexpr int64_t kMlpLoptFeatures = 28;
inline constexpr int64_t kMlpLoptTimeFeatures = 11;

// Effective decays from their parameters: momentum [3], rms [1], adafactor [3] (differentiable in φ_d).
struct MlpLoptDecays {
  at::Tensor momentum, rms, adafactor;
};

// Accumulators of one parameter tensor p [B, S...]: m [B, S..., 3], v [B, S..., 1]; for rank(S) ≥ 2 fac_r = R
// [B, S without d0..., 3] and fac_c = C [B, S without d1..., 3], for rank(S) = 1 fac_r = V [B, S..., 3] and fac_c
// undefined. to_slot/from_slot convert (fac_r, fac_c) to and from the flat "fac" slot [B, K, 3].
struct MlpLoptAccumulators {
  at::Tensor m, v, fac_r, fac_c;
  at::Tensor to_slot() const;
  static MlpLoptAccumulators from_slots(const at::Tensor& p, const at::Tensor& m, const at::Tensor& v,
                                        const at::Tensor& fac);
};

// Updates the accumulators of one parameter tensor p, g [B, S...] (S of rank ≥ 1; the caller reshapes [B] to
// [B, 1]) and returns the raw, unnormalised features [B, S..., 28] in the order of docs/methods.md §11.5.
at::Tensor mlp_lopt_features(const at::Tensor& p, const at::Tensor& g, const MlpLoptDecays& decays,
                             MlpLoptAccumulators& accumulators);
// x / √(1e-5 + mean over the coordinates of each problem's tensor of x²), per channel: raw [B, S..., C].
at::Tensor mlp_lopt_normalise(const at::Tensor& raw);
// tanh(t/s − 1) for the 11 time scales, [11] in float64.
at::Tensor mlp_lopt_time_features(int64_t t);
// The hand-set decays (every φ_d = 0) in `opts`.
MlpLoptDecays mlp_lopt_default_decays(const at::TensorOptions& opts);

// The feature pipeline on whole parameter lists, for mlp-lopt and for other optimizers that observe the same
// information (phnn-features). mlp_lopt_init_slots adds zero slots "m", "v", "fac" for `params` ([B, ...] each) in
// `dtype` to `state`. mlp_lopt_feature_rows reads those slots from `state`, writes the advanced ones into `next`
// and returns the normalised features of every coordinate as rows [R, 28] in the row layout of to_rows (tensor
// after tensor, problem after problem), computed in `opts`. With `fused` the step runs as mlp_lopt_kernel.hpp's
// loops where that kernel applies (nothing requires grad, CPU, per-problem rank ≤ 2), else as tensor operations.
void mlp_lopt_init_slots(const TensorList& params, at::ScalarType dtype, optim::OptimizerState& state);
at::Tensor mlp_lopt_feature_rows(const TensorList& params, const TensorList& grads, const MlpLoptDecays& decays,
                                 const optim::OptimizerState& state, optim::OptimizerState& next,
                                 const at::TensorOptions& opts, bool fused = false);

struct MlpLoptOptions {
  int64_t hidden = 4;             // width of each hidden layer
  int64_t hidden_layers = 2;      // number of hidden layers
  double exp_mult = 0.001;        // λ_e
  double step_mult = 0.001;       // λ_s
  double out_mul = 1.0;           // hamlet's output scale (the tuner's knob)
  int64_t seed = 0;               // weight initialisation
  std::string dtype = "float32";  // weight dtype: float32 | float64
  // fused | tensor: a step that nothing differentiates (evaluation, ES, PES) as the fused whole update of
  // mlp_lopt_update_kernel.hpp (per-problem rank <= 2, parameters in the compute dtype; else the features alone as
  // mlp_lopt_kernel.hpp's loops) or as tensor operations (the reference; they agree to float32 rounding).
  std::string kernel = "fused";
  std::string weights;            // weight file this optimizer was loaded from (provenance)

  HAMLET_OPTIONS(MlpLoptOptions);
};

class MlpLopt final : public ConfiguredLearnedOptimizer<MlpLoptOptions> {
 public:
  explicit MlpLopt(MlpLoptOptions options = {});

  optim::OptimizerState init(const TensorList& params) const override;
  optim::StepResult update(const TensorList& params, const TensorList& grads, const at::Tensor& loss,
                           const optim::OptimizerState& state) const override;

  std::string architecture() const override;
  // [coordinates, 28] features and their intermediates per tensor: past one MNIST-MLP problem per program they
  // leave the cache (measured: 4 problems in one program 0.7x the speed of one at a time).
  int64_t max_batch_coordinates() const override { return 16384; }
  // The feature normalisation and the Adafactor row/column statistics reduce within one problem's tensor.
  bool updates_problems_independently() const override { return true; }
  // The step's nominal arithmetic per coordinate, with W = hidden and L = hidden_layers: accumulators (16), the
  // per-coordinate features (15), their sums of squares (2 · 28), the MLP 28 → W → ... → 2 (2 · (28 W + (L − 1) W² +
  // 2 W), the time features being a bias per step), the ReLUs (L W) and the output exp and update (5).
  double flops_per_coordinate() const override;
  // Of those, the activations: the output's exp (the ReLU network has none).
  double activations_per_coordinate() const override;
  // The decays the current decay parameters give, in the compute options `opts` (differentiable).
  MlpLoptDecays decays(const at::TensorOptions& opts) const;
};

}  // namespace hamlet::learned
