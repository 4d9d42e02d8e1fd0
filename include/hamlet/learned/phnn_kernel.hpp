#pragma once
// One phnn optimizee step fused per coordinate (issue "Scale meta-training" §2, "learned steps
// near the floor"): the same arithmetic as ph::symplectic_euler with the closed-form ∂H/∂q (phnn.hpp, docs/methods.md
// §2), written as one loop over the coordinates instead of ~100 ATen operations that each make a pass over
// [R, w] tensors. Phnn::update() takes this path when the tensors are on the CPU, derivatives = closed-form
// (option `kernel`, default fused; Phnn::uses_fused_kernel) and either nothing will be differentiated
// (evaluation) or the step is one the autograd node below covers (meta-training with K = 1 and a state
// dissipation, constant or state mass; also both passes of --recompute, which see the same forward loop). Every
// other differentiated step (K > 1, a constant dissipation, the autograd reference) keeps the tensor expressions,
// which stay the
// reference this kernel is tested against (tests/learned/test_phnn_kernel.cpp: equal at 1e-12 in float64, within
// 5e-6 in float32; the node's cotangents equal at 1e-12).
//
// Per coordinate (row r), K substeps of size h from (q, p):
//   s_V = tanh(V1 q + b_V1),  ∂V/∂q = V1ᵀ[(1 − s_V²) ⊙ v2],  V = v2 · s_V + b_V2
//   M⁻¹ = L_M L_Mᵀ + ε_M I from raw = M2 tanh(M1 q + b) + b (mass = state; softplus diagonal) or the constant M⁻¹,
//         and for the state mass ∂K/∂q = M1ᵀ[(1 − s_M²) ⊙ (M2ᵀ ∂K/∂raw)], K = ½ pᵀ M⁻¹(q) p
//   D   = L Lᵀ + ε_D I from raw = D2 tanh(D1 q + c_D) + b_D2 (dissipation = state) or the constant D
//   G   = G2 tanh(G1 q + c_G) + b_G2
//   a = ∂V/∂q + ∂K/∂q,  b = M⁻¹ p;  p ← p + h(−a − (D[a; b])_p + G);  a, b again at (q, p);
//   q̇ = b − (D[a; b])_q;  q ← q + h q̇
// where c_G, c_D are the first layers' biases, or per row the bias plus the context's contribution (lopt-features:
// rows W_rowsᵀ + time W_timeᵀ + b, computed by the caller with one GEMM). tanh is 2σ(2x) − 1 as fast_tanh.
#include <ATen/ATen.h>

#include "hamlet/core/tensor.hpp"
#include "hamlet/learned/mlp_lopt.hpp"

namespace hamlet::learned::ph {

// The weights of one step, CPU tensors of the step's dtype (float32 or float64), any layout (made contiguous).
// w = hidden width, d = feature width, n = 2d(2d + 1)/2 raw dissipation entries.
struct KernelWeights {
  at::Tensor v1, v1_bias, v2, v2_bias;  // V: [w, d], [w], [1, w], [1]
  at::Tensor g1, g1_bias, g2, g2_bias;  // G: q columns of G.0.weight [w, d]; bias [w] or per row [R, w]; [d, w], [d]
  // dissipation = state: D1 the q columns [w, d], its bias [w] or [R, w], D2 [n, w], [n]; undefined otherwise.
  at::Tensor d1, d1_bias, d2, d2_bias;
  at::Tensor dissipation;  // dissipation = constant: D [2d, 2d] (undefined with a state dissipation)
  at::Tensor inv_mass;     // mass = constant: M⁻¹ [d, d] (undefined with a state mass)
  at::Tensor m1, m1_bias, m2, m2_bias;  // mass = state: M.0 [w, d], [w], M.2 [d(d+1)/2, w], [d(d+1)/2]
  bool d_softplus = false;  // softplus on the diagonal of L_D (as PhnnOptions::d_softplus)
  double eps_d = 1e-3;
  double eps_m = 1e-3;  // mass = state: M⁻¹ = L_M L_Mᵀ + ε_M I (L_M with a softplus diagonal)
};

struct KernelStep {
  at::Tensor q_dot, p_next, q_hat;  // [R, d]: mean substep velocity, momentum and q after the K substeps
  at::Tensor energy_before;         // H(q, p), [R]
  at::Tensor energy_after;          // H(q̂, p_next), [R]
  at::Tensor dissipated_power;      // ∇Hᵀ D ∇H at (q, p), [R]
  at::Tensor supplied_power;        // bᵀ G at (q, p), [R]
};

// The step above for rows q, p [R, d] (d ≤ 4). Throws on shapes that do not fit together or a non-CPU tensor.
KernelStep fused_step(const KernelWeights& weights, const at::Tensor& q, const at::Tensor& p, double h,
                      int64_t substeps);

// The whole evaluation update of Phnn::update() with gradient inputs, read and written in place of the rows that
// update() would concatenate: for parameters θ, gradients g [B, ...] and momenta p [B, ..., d] (alike in shape, CPU;
// gradients and momenta are converted to the parameters' dtype, float32 or float64), q = P(g) (d = 2, `preprocess`)
// or g (d = 1), the K substeps above, u = [q̇ | q] W_uᵀ (linear, W_u [1, 2d]) or δ · exp(exp_mult · μ) for
// [δ, μ] = [q̇ | q] W_uᵀ (exp, W_u [2, 2d]), θ' = θ + out_mul · u; returns θ', p' and the four energy terms summed
// per problem over every tensor's coordinates, [B]. The weights' first-layer biases must be shared ([w]). No
// temporaries beyond the outputs; the coordinates are split into fixed pieces over torch's intra-op threads and
// the sums added per piece in piece order (core/parallel.hpp), so the result is bitwise the same on any thread
// count (tests/learned/test_phnn_kernel.cpp; the values equal the tensor path's as fused_step's do).
struct UpdateReadout {
  at::Tensor w_u;          // [1, 2d] (linear) or [2, 2d] (exp)
  bool exp = false;
  double exp_mult = 0.0;
  double out_mul = 0.0;
  bool preprocess = false;  // d = 2
};
struct UpdateResult {
  TensorList params, p;                                                       // θ', p', shaped like the inputs
  at::Tensor energy_before, energy_after, dissipated_power, supplied_power;  // [B]
  TensorList m, v, fac;  // fused_features_update: the next accumulator slots (empty otherwise)
};
UpdateResult fused_update(const KernelWeights& weights, const UpdateReadout& readout, const TensorList& params,
                          const TensorList& grads, const TensorList& momenta, double h, int64_t substeps);

// The whole evaluation update of phnn-features (Phnn::update() with inputs = lopt-features, d = 1), read and written
// in place of the [R, 28] feature rows and the [R, 2w] context biases that update() would otherwise build: for
// parameters θ, gradients g [B, ...] (per-problem rank ≤ 2), momenta p [B, ..., 1] and mlp-lopt's accumulator slots
// "m", "v", "fac" in `state` (mlp_lopt_init_slots), per problem and tensor
//   passes 1, 2  mlp-lopt's accumulators and the sums of squares of its 28 features (lopt_feature_passes.hpp, shared
//                with mlp_lopt_update_fused), giving each channel's 1/rms;
//   pass 3       per block of 64 coordinates the features, the context layer c = W x̄ + b on the normalised
//                features x̄ (G's first-layer biases per row, then D's with a state dissipation), q = z_0 = g / rms(g),
//                the K substeps above with those per-row biases, the readout and θ' = θ + out_mul · u.
// `weights` hold the q columns of G.0 and D.0 (their biases are replaced by the rows' context); `features.weight`
// [W, 28] is z's 28 feature columns of G.0 then (dissipation = state) D.0, W = w or 2w, and `features.bias` [W]
// their biases plus the time features' share (time W_timeᵀ + b, shared by every row). Returns θ', p', the next m,
// v, fac and the four energy terms summed per problem, [B]. No temporaries beyond the outputs; pass 3 runs in chunks
// of at most 4,096 coordinates, passes 1 and 2 as mlp-lopt's, each chunk's size a function of the slice's size
// alone and the sums added in chunk order, so the result is bitwise the same on any thread count. Agrees with the
// tensor path (phnn.hpp, `kernel=tensor`) to 1e-12 in float64 and to float32 rounding
// (tests/learned/test_phnn_kernel.cpp).
struct FeatureInputs {
  MlpLoptDecays decays;  // the accumulators' decays
  at::Tensor weight;     // [W, 28]
  at::Tensor bias;       // [W]
};
UpdateResult fused_features_update(const KernelWeights& weights, const FeatureInputs& features,
                                   const UpdateReadout& readout, const TensorList& params, const TensorList& grads,
                                   const TensorList& momenta, const optim::OptimizerState& state, double h,
                                   int64_t substeps);

// Meta-training (issue "Scale meta-training" §2): the same step as one autograd node whose backward pass is
// written out, for K = 1 and a state dissipation with a constant mass (the MNIST protocols' phnn and
// phnn-features) or a state mass (phnn's default, issue 33). q_dot and p_next are differentiable in q, p and the
// weight tensors v1, v1_bias (shared or per row), v2, g1, g1_bias, g2, g2_bias, d1, d1_bias, d2, d2_bias and
// inv_mass or m1, m1_bias, m2, m2_bias, whatever they were computed from upstream (narrowed weights, psd_from_raw,
// the context GEMM); q_hat and the energy terms are not differentiable. The backward is a loop like the forward:
// it recomputes the substep from the saved q and p (nothing else is stored) and then applies, per row, with
// ȳ = cotangents and x = [a; b], x' = [a'; b'] (phnn.hpp):
//   q̇ = b' − (D x')_q, b' = M⁻¹ p', p' = p + h(−a − (D x)_p + G), D = L Lᵀ + ε I,
//   a = V1ᵀ[(1 − s_V²) ⊙ v2] + ∂K/∂q(q, p), a' = the same at (q, p') (a' = a for a constant mass)
// in reverse, summing the weights' cotangents over the rows (per-row biases get one row each). With a state mass
// the kinetic gradient ∂K/∂q = M1ᵀ[(1 − s_M²) ⊙ (M2ᵀ k)], k = ∂K/∂raw(raw, p) is differentiated once more in
// q, p and the M network's weights (second derivatives of K: through k's dependence on raw and p, through the
// tanh's 1 − s_M², and through M1, M2 directly), and M⁻¹(q) = L_M L_Mᵀ + ε_M I back to the M network. Tested against
// autograd through the tensor expressions (tests/learned/test_phnn_kernel.cpp: every cotangent equal at 1e-12 in
// float64). Backward is first-order only.
bool trainable_step_applies(const KernelWeights& weights, int64_t substeps);
KernelStep fused_step_trainable(const KernelWeights& weights, const at::Tensor& q, const at::Tensor& p, double h,
                                int64_t substeps);

}  // namespace hamlet::learned::ph
