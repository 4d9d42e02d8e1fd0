#pragma once
// One phnn-paper optimizee step without autograd, fused per coordinate (issue "Scale meta-training" §2): the
// arithmetic of PhnnPaper::forward (phnn_paper.hpp, docs/methods.md §1; OPT-ML `src/hamiltonian.py`) including the
// preprocessing P of g and s (preprocess.hpp), as one loop over the coordinates instead of ~30 ATen operations
// that each make a pass over [R] or [R, d] tensors. PhnnPaper::update() takes this path when nothing will be
// differentiated (weights not trainable, g and s not requiring grad), the tensors are on the CPU and `kernel` is
// fused (the default); the tensor expressions stay the reference it is tested against
// (tests/learned/test_phnn_paper.cpp: equal at 1e-12 in float64, within float32 rounding in float32).
//
// Per coordinate, with q = φ(g), σ = φ(s) (φ = P for d = 2, the identity for d = 1):
//   G = G2 relu(G0 q + b) + b,  a = V2 relu(V0 q + b) + b,  [r_q | r_p] = D_w [a | σ],
//   q̇ = σ − r_q,  q̈ = (G − a − r_p) M⁻¹,  u = W_u [q̇ | q],  s' = W_s [q̇ | q̈] + b_s.
#include <ATen/ATen.h>

#include "hamlet/core/tensor.hpp"

namespace hamlet::learned {

// The weights in PhnnPaper's shapes (d = 1 or 2), CPU tensors of any float dtype and layout.
struct PhnnPaperKernelWeights {
  at::Tensor g0_weight, g0_bias, g2_weight, g2_bias;  // [d, d], [d], [d, d], [d]
  at::Tensor v0_weight, v0_bias, v2_weight, v2_bias;  // same shapes
  at::Tensor d_weight;                                // [2d, 2d]
  at::Tensor inv_mass;                                // M⁻¹ [d, d] (L Lᵀ or Lᵀ L, built by the caller)
  at::Tensor u_weight, s_weight, s_bias;              // [1, 2d], [1, 2d], [1]
  bool preprocess = false;                            // φ = P (d = 2) or the identity (d = 1)
};

struct PhnnPaperKernelStep {
  at::Tensor u, s_next;  // [R]: the update direction (before out_mul) and the new state (before norm)
};

// The step above for gradient rows g [R] and state rows s [R] (float32 or float64, CPU).
PhnnPaperKernelStep phnn_paper_fused_step(const PhnnPaperKernelWeights& weights, const at::Tensor& g,
                                          const at::Tensor& s);

// The whole evaluation update of PhnnPaper::update() for parameters, gradients and states s, every one [B, ...] and
// alike in shape (CPU, the parameters' dtype float32 or float64; gradients and states are converted to it), read
// and written in place of the rows that update() would concatenate: θ' = θ + out_mul · u, and s' divided by its
// Euclidean norm per tensor and problem when `norm` (normalise_per_tensor: a zero block stays zero). No temporaries
// beyond the outputs; the coordinates are split into fixed pieces over torch's intra-op threads and the norms
// summed per piece in piece order (core/parallel.hpp), so the result is bitwise the same on any thread count. The
// values equal the tensor path's to 1e-12 in float64 and to float32 rounding in float32
// (tests/learned/test_phnn_paper.cpp).
struct PhnnPaperUpdate {
  TensorList params, s;  // new parameters and states, shaped like the inputs
};
PhnnPaperUpdate phnn_paper_fused_update(const PhnnPaperKernelWeights& weights, const TensorList& params,
                                        const TensorList& grads, const TensorList& states, double out_mul, bool norm);

// Meta-training: the same step as one autograd node with a written-out backward, for g and s that nothing
// differentiates (first-order meta-training, and s fed back only through the non-differentiable P: preprocess
// with state_grad = false, the MNIST protocol). Then u is the only output a meta-gradient reaches, and it depends
// on V.0, V.2, D_w (its first d rows) and W_u alone (G, L, W_s only shape s', docs/methods.md §1.7): u is
// differentiable in those tensors, with, per row and ū its cotangent,
//   W̄_u += ū [q̇ | q],  q̇̄ = ū W_u,q̇,  D̄_w,q += −q̇̄ [a | σ]ᵀ,  ā = −D_w,qaᵀ q̇̄,  then the ReLU MLP V in reverse,
// summed over the rows in double; s' is returned as not differentiable. Tested against autograd through
// PhnnPaper's tensor expressions (tests/learned/test_phnn_paper.cpp: equal at 1e-12 in float64).
PhnnPaperKernelStep phnn_paper_fused_step_trainable(const PhnnPaperKernelWeights& weights, const at::Tensor& g,
                                                    const at::Tensor& s);

}  // namespace hamlet::learned
