#pragma once
// tanh for the learned optimizers' networks, computed as tanh(x) = 2·σ(2x) − 1.
//
// Why not at::tanh: Debian's libtorch 1.13 evaluates tanh one value at a time on CPU (0.84 ms for the
// 15,910 × 20 values of one LSTM layer on an MNIST MLP, one Xeon core), while its sigmoid is vectorised (0.21 ms
// for as many values); the identity costs 0.35 ms (three passes). The learned optimizers apply tanh to every
// coordinate's hidden units several times per step (LSTM cells, phnn's tanh MLPs), so this is a few ms a step.
//
// Accuracy: the subtraction near σ = 1/2 cancels, so the error is absolute, about one ulp of 1 (≤ 2.4e-7 in
// float32, ≤ 4.5e-16 in float64, measured in tests/learned/test_fast_tanh.cpp) rather than relative: tanh(1e-6)
// in float32 is right to ~10 % only. For a hidden activation that is multiplied into a sum of order-one terms this
// is rounding noise; do not use it where small values matter relatively. Saturates exactly to ±1, keeps NaN.
//
// Differentiable: the backward is g·(1 − y²) from the saved output, as at::tanh's, and twice differentiable (the
// autograd reference of phnn's closed-form ∂H/∂q differentiates it twice). Without autograd (evaluation) no graph
// node is made.
#include <ATen/ATen.h>

namespace hamlet::learned {

// Elementwise tanh(x) as above: same shape, dtype and device as x.
at::Tensor fast_tanh(const at::Tensor& x);

}  // namespace hamlet::learned
