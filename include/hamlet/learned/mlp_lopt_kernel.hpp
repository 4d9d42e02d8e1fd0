#pragma once
// mlp-lopt's feature rows without autograd, fused (issue "Scale meta-training" §2): the accumulator updates, the 28
// per-coordinate features and their per-tensor RMS normalisation of mlp_lopt_feature_rows (mlp_lopt.hpp,
// docs/methods.md §11.5; Metz et al. 2022) as three loops over each tensor (the Adafactor means, the raw features with
// their channel sums of squares, the normalisation) instead of ~40 ATen operations on [N, 3] pieces and a
// [N, 28] concatenation. Used by phnn-features, and by mlp-lopt where its whole fused update
// (mlp_lopt_update_kernel.hpp) does not apply (option `kernel`, default fused), when nothing will be
// differentiated (no trainable weight, no input requiring grad), every tensor is on the CPU in float32 or float64
// and has a per-problem rank ≤ 2 (MLPs, the HNN task, quadratics; a higher rank keeps the tensor path). The tensor
// expressions stay the reference (tests/learned/test_mlp_lopt.cpp: equal at 1e-12 in float64).
#include "hamlet/learned/mlp_lopt.hpp"

namespace hamlet::learned {

// Whether mlp_lopt_feature_rows_fused applies to these parameters (rank ≤ 2 per problem after as_processed, CPU,
// float32/float64, no grad required anywhere including the decays).
bool mlp_lopt_fused_applies(const TensorList& params, const TensorList& grads, const MlpLoptDecays& decays,
                            const at::TensorOptions& opts);
// Same contract and results as mlp_lopt_feature_rows.
at::Tensor mlp_lopt_feature_rows_fused(const TensorList& params, const TensorList& grads, const MlpLoptDecays& decays,
                                       const optim::OptimizerState& state, optim::OptimizerState& next,
                                       const at::TensorOptions& opts);

}  // namespace hamlet::learned
