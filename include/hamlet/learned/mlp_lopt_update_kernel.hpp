#pragma once
// mlp-lopt's whole evaluation step fused (issue 33, "Learned optimizer steps at model scale"): the accumulator
// updates, the 28 features and their per-tensor RMS normalisation, the 39 → H → ... → 2 MLP, the output exp and the
// parameter update of MlpLopt::update (mlp_lopt.hpp, docs/methods.md §11; Metz et al. 2022) as loops over blocks of
// coordinates, with no full-size temporaries beyond the outputs (the new parameters and state slots).
//
// Per parameter tensor and problem (per-problem shape S of rank ≤ 2, as mlp_lopt_kernel.hpp):
//   pass 1  m', v' (and V' for rank ≤ 1), the sums of q = g² + 1e-30 along both axes (rank 2) and the per-channel
//           sums of squares of every feature that is known per coordinate at this point;
//   then    R', C' and their inverse roots from those sums (O(n1 + n2)), the sums of squares of the broadcast
//           features (R, C, (R + 1e-8)^−½, (C + 1e-8)^−½) from R' and C' alone;
//   pass 2  (rank 2 only) the sums of squares of g·F_k and m_k·F_k, F_k = row_k · col_k, which need R' and C';
//   then    layer 0 with each input row divided by its channel's RMS, the 11 time features folded into its bias, and
//           (rank 2) the broadcast features' share of layer 0 per row and per column of the tensor;
//   pass 3  per block of 128 coordinates the per-coordinate features (16 for rank 2, all 28 for rank ≤ 1; structure
//           of arrays: the loops run across the block's coordinates and vectorise, the weights are broadcast), the
//           MLP with ReLU, and θ' = θ − out_mul · d · exp(exp_mult · μ) · step_mult written straight into the new
//           parameter tensor. With the default network (hidden = 4, hidden_layers = 2) a rank-2 block runs as one
//           loop that keeps a coordinate's features and hidden units in registers.
// The passes are split into chunks over torch's intra-op threads (hamlet::for_each_chunk); the chunk size is a
// function of the slice's size alone (at most 16,384 coordinates, a multiple of 8 equal chunks), every sum is formed
// per chunk and combined in chunk order, so the result has the same bits on any thread count. The loops are compiled
// for AVX-512, AVX2 and SSE2 (GCC function multiversioning picks one at load time). Passes 1 and 2 and layer 0 per
// block are src/learned/lopt_feature_passes.hpp's, shared with phnn-features' fused update (phnn_kernel.hpp).
//
// Agreement with the tensor path (the reference, `kernel=tensor`): the sums and layer 0 are associated differently
// (and float32's exp is kernel_math.hpp's polynomial), so results agree to rounding: 1e-12 in float64, float32
// rounding in float32 (tests/learned/test_mlp_lopt_update_kernel.cpp).
#include "hamlet/learned/mlp_lopt.hpp"

namespace hamlet::learned {

// Whether mlp_lopt_update_fused applies: the conditions of mlp_lopt_fused_applies (CPU, float32/float64, per-problem
// rank ≤ 2, nothing requires grad, decays included), no weight requires grad, every parameter in the compute dtype
// of `opts` with a problem dimension, and no state slot requires grad.
bool mlp_lopt_update_fused_applies(const TensorList& params, const TensorList& grads, const TensorList& weights,
                                   const MlpLoptDecays& decays, const optim::OptimizerState& state,
                                   const at::TensorOptions& opts);

// One MlpLopt::update step on the fused path: `weights` are MlpLopt's weights in the compute options `opts`
// (mlp.0.w [39, W1], mlp.0.b, ..., mlp.L.w [W_L, 2], mlp.L.b, then the decay parameters, which `decays` already
// evaluates); `state` holds slots "m", "v", "fac" (mlp_lopt_init_slots). Returns the new parameters (shapes and
// dtype of `params`) and the next state (step + 1), the same contract and values as the tensor path.
optim::StepResult mlp_lopt_update_fused(const MlpLoptOptions& options, const TensorList& weights,
                                        const MlpLoptDecays& decays, const TensorList& params, const TensorList& grads,
                                        const optim::OptimizerState& state, const at::TensorOptions& opts);

}  // namespace hamlet::learned
