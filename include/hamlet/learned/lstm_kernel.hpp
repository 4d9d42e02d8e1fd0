#pragma once
// One step of the coordinatewise LSTM optimizer (lstm.hpp; Andrychowicz et al. 2016) as one autograd node with a
// hand-written backward (issue "Scale meta-training" §2): the two cell GEMMs per layer stay ATen/OpenBLAS calls,
// everything elementwise (the gate activations, the cell update, tanh(c), the head) runs in one loop per layer,
// forward and backward, instead of ~15 ATen operations per layer that each make a pass over [R, H..4H] and each
// leave a graph node and its saved tensors behind.
//
// Per row (coordinate) r, for layer l with input x_l (x_1 = x, x_2 = h1') and carried (h_l, c_l):
//   a = [x_l | h_l] [W_ih | W_hh]ᵀ + b_ih + b_hh;  i, f, o = σ(a_i, a_f, a_o);  g = tanh(a_g)   (gate order i f g o)
//   c_l' = f ⊙ c_l + i ⊙ g;  h_l' = o ⊙ tanh(c_l');   u = w_head · h2' + b_head
// tanh is fast_tanh's 2σ(2x) − 1 (fast_tanh.hpp) and σ is 1/(1 + e^−x), with the vectorisable exp of the phnn
// kernel in float32. Backward, with cotangents ū, h̄_l', c̄_l' of the outputs (missing ones are zero):
//   h̄2' += ū w_head;  t = tanh(c_l');  c̄ = c̄_l' + h̄_l' ⊙ o ⊙ (1 − t²)
//   ā = [c̄ ⊙ g ⊙ i(1 − i), c̄ ⊙ c_l ⊙ f(1 − f), c̄ ⊙ i ⊙ (1 − g²), h̄_l' ⊙ t ⊙ o(1 − o)];  c̄_l = c̄ ⊙ f
//   [x̄_l | h̄_l] = ā [W_ih | W_hh];  [W̄_ih | W̄_hh] = āᵀ [x_l | h_l];  b̄_ih = b̄_hh = Σ_r ā;  h̄1' += x̄_2
// It saves [x_l | h_l], the activations [i f g o], c_l and c_l' per layer and h2' (4H + 2H + d + 3H values per row
// and layer), not an autograd graph. Backward is first-order only (no double backward through it).
//
// The tensor expressions of LstmOptimizer (option kernel=tensor) are the reference it is tested against
// (tests/learned/test_lstm_kernel.cpp: values and every input's gradient equal at 1e-12 in float64, within 1e-5 in
// float32).
#include <ATen/ATen.h>

#include <vector>

#include "hamlet/learned/lstm.hpp"

namespace hamlet::learned {

struct LstmStepRows {
  at::Tensor u;       // [R]: the head's output (before out_mul)
  at::Tensor h1, c1;  // [R, H]: the first cell's new state
  at::Tensor h2, c2;  // [R, H]: the second cell's new state
};

// Whether lstm_fused_step takes x [R, d] and these weights: CPU tensors of one floating dtype, float32 or float64.
bool lstm_fused_applies(const at::Tensor& x, const std::vector<at::Tensor>& weights);

// The step above for rows x [R, d] and states h1, c1, h2, c2 [R, H]; weights in LstmOptimizer's order (cell1
// weight_ih [4H, d], weight_hh [4H, H], bias_ih [4H], bias_hh [4H], cell2 likewise with input H, head weight
// [1, H], bias [1]). Differentiable in every input (one graph node) when grad mode is on and any input requires
// grad; otherwise nothing is saved. Throws on shapes that do not fit together.
LstmStepRows lstm_fused_step(const at::Tensor& x, const at::Tensor& h1, const at::Tensor& c1, const at::Tensor& h2,
                             const at::Tensor& c2, const std::vector<at::Tensor>& weights);

// ---- Evaluation: the whole update in blocks of rows ----
//
// LstmOptimizer::update when nothing requires grad (evaluation, ES/PES), the same arithmetic as the tensor
// expressions without building any full-size [R, ...] temporary: every parameter tensor's coordinates are cut into
// blocks of kLstmEvalBlock rows (a fixed size, never derived from the thread count, so the results are the same bits
// on any number of threads), the blocks are spread over torch's intra-op threads (core/parallel.hpp), and per block,
// a few rows at a time: the features x = P(g) (or g), layer 1's gates b_ih + b_hh + [x | h1] [W_ih | W_hh]ᵀ held in
// registers, their activations, c1' and h1' written into the new state, layer 2 likewise from [h1' | h2], the head
// u = w_head · h2' + b_head and θ' = θ + out_mul · u written into the new parameters. The state is read from and
// written to the slots' own [B, ..., H] layout (no to_rows / from_rows copies).
//
// float32 with 4H a multiple of 16 and H ≤ 24 on a CPU with AVX-512 runs a register-blocked loop written with AVX-512
// intrinsics (the gates of 4 rows in up to 24 vector registers); for H = 20, the protocols' width, with the gate
// columns interleaved so that the cell update too stays in registers. Every other case (float64, other H, other
// CPUs) runs plain loops over the 4H gates of one row. σ and tanh are those of lstm_fused_step (σ with
// kernel_math.hpp's call-free exp in float32, tanh = 2σ(2x) − 1), so values equal the tensor expressions at 1e-12 in
// float64 and to float32 rounding in float32 (tests/learned/test_lstm_kernel.cpp).
constexpr int64_t kLstmEvalBlock = 512;

// Whether lstm_update_blocked applies: compute options `opts` on the CPU in float32 or float64, every parameter of
// that dtype with a leading problem dimension, gradients and the four state slots on the CPU with one tensor per
// parameter, and nothing requiring grad (weights, parameters, gradients, state).
bool lstm_update_blocked_applies(const TensorList& params, const TensorList& grads, const optim::OptimizerState& state,
                                 const TensorList& weights, const at::TensorOptions& opts);

// LstmOptimizer::update for `options` and `weights` (LstmOptimizer's order, converted to `opts`), computing in `opts`:
// new parameters, slots "h1", "c1", "h2", "c2" ([B, ..., H], compute dtype) and step + 1. Throws where the state does
// not fit the parameters or lstm_update_blocked_applies does not hold.
optim::StepResult lstm_update_blocked(const LstmOptions& options, const TensorList& weights, const TensorList& params,
                                      const TensorList& grads, const optim::OptimizerState& state,
                                      const at::TensorOptions& opts);

}  // namespace hamlet::learned
