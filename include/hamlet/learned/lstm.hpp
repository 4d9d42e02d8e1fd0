#pragma once
// Coordinatewise LSTM optimizer ("lstm") of Andrychowicz et al. 2016, "Learning to learn by gradient descent by
// gradient descent", as in AfoninAndrei/OPT-ML `src/meta_optimizer.py` (Optimizer_LSTM, taken from the L2L
// PyTorch reproduction chenwydj/learning-to-learn-by-gradient-descent-by-gradient-descent). docs/methods.md §3.
//
//   x_t = φ(g_t)  (P of preprocess.hpp, d = 2, with preprocess; the raw gradient, d = 1, otherwise)
//   (h1, c1) ← LSTMCell(d, H)(x_t, (h1, c1));  (h2, c2) ← LSTMCell(H, H)(h1, (h2, c2));  u = Linear(H→1)(h2)
//   θ ← θ + out_mul · u
//
// Cells follow LibTorch's LSTMCell (gate order i, f, g, o; two bias vectors), implemented functionally with ATen
// ops so that θ_{t+1} is differentiable in the weights:
//   [i, f, g, o] = x W_ihᵀ + b_ih + h W_hhᵀ + b_hh;  i, f, o ← σ;  g ← tanh;  c' = f⊙c + i⊙g;  h' = o⊙tanh(c')
// tanh is fast_tanh (2σ(2x) − 1, within 1.8e-7 of at::tanh in float32; fast_tanh.hpp says why).
//
// Weights in order: cell1.weight_ih [4H,d], cell1.weight_hh [4H,H], cell1.bias_ih [4H], cell1.bias_hh [4H],
// cell2.* (input H), head.weight [1,H], head.bias [1] (OPT-ML names: recurs.*, recurs2.*, output.*). All drawn from
// U(±1/√H) (LSTMCell default; the head's fan-in is H too). Counts with H = 20: 5221 (d = 1), 5301 (d = 2).
//
// State: slots "h1", "c1", "h2", "c2", each [B, ..., H] per parameter tensor, zero at trajectory start; the new
// state keeps its autograd history within update().
//
// kernel: fused (default) runs the step on CPU float32/float64 as one autograd node with a hand-written backward
// (lstm_fused_step, lstm_kernel.hpp) in meta-training, and, when nothing requires grad (evaluation, ES/PES), as the
// blocked evaluation loop lstm_update_blocked (same header: blocks of rows, over torch's intra-op threads, with the same
// bits on any thread count); tensor runs the ATen expressions below (the reference; any device).
//
// out_mul: 1.0 by default (quadratic). The MNIST experiments train with 0.1 (the L2L rescaling); OPT-ML evaluated
// with 1.0, which docs/methods.md §3.2 treats as a labelled variant.
#include <string>
#include <utility>
#include <vector>

#include "hamlet/core/option_spec.hpp"
#include "hamlet/learned/learned_optimizer.hpp"

namespace hamlet::learned {

// One LSTM cell on rows x [R, in], h, c [R, H]; returns (h', c'). Agrees with at::lstm_cell.
std::pair<at::Tensor, at::Tensor> lstm_cell(const at::Tensor& x, const at::Tensor& h, const at::Tensor& c,
                                            const at::Tensor& w_ih, const at::Tensor& w_hh, const at::Tensor& b_ih,
                                            const at::Tensor& b_hh);

struct LstmOptions {
  bool preprocess = false;        // P on the gradient (d = 2)
  int64_t hidden = 20;            // H, units of both cells
  double out_mul = 1.0;           // θ ← θ + out_mul·u
  int64_t seed = 0;               // weight initialisation
  std::string dtype = "float32";  // weight dtype: float32 | float64
  std::string weights;            // weight file this optimizer was loaded from (provenance)
  std::string kernel = "fused";   // fused (lstm_kernel.hpp, CPU float32/float64) | tensor (ATen expressions)

  int64_t dim() const { return preprocess ? 2 : 1; }
  HAMLET_OPTIONS(LstmOptions);
};

class LstmOptimizer final : public ConfiguredLearnedOptimizer<LstmOptions> {
 public:
  explicit LstmOptimizer(LstmOptions options = {});

  optim::OptimizerState init(const TensorList& params) const override;
  optim::StepResult update(const TensorList& params, const TensorList& grads, const at::Tensor& loss,
                           const optim::OptimizerState& state) const override;

  std::string architecture() const override;
  // Measured on the MNIST MLP (15,910 coordinates per problem), 100 problem-steps: 54/s one problem per chunk, 5/s with 40.
  int64_t max_batch_coordinates() const override { return 16384; }
  // Every row is one coordinate and the cells carry nothing across rows.
  bool updates_problems_independently() const override { return true; }
  // Nominal flops of one update per coordinate (a multiply-add 2; exp, tanh, log and a division 1): the two cells'
  // gate products 2·4H(d + H) and 2·4H·2H, per cell and unit 15 (three σ of exp, add and division, tanh(g), c' with a
  // multiply and a multiply-add, h' with a tanh and a multiply), the head 2H, P's log feature 3 (add, log, division;
  // with preprocess) and θ + out_mul·u 2. 10,565 for H = 20, d = 2.
  double flops_per_coordinate() const override;
  // Of those, the activations: per cell and unit three σ and two tanh (10H, 200 for H = 20), and P's log.
  double activations_per_coordinate() const override;
  // Whether update() runs the step on rows x through lstm_fused_step: kernel = fused, CPU, float32/float64.
  bool uses_fused_kernel(const at::Tensor& x, const TensorList& weights) const;
};

}  // namespace hamlet::learned
