#include "hamlet/learned/lstm.hpp"

#include <array>
#include <cmath>
#include <tuple>

#include "hamlet/core/error.hpp"
#include "hamlet/core/seed.hpp"
#include "hamlet/learned/fast_tanh.hpp"
#include "hamlet/learned/lstm_kernel.hpp"
#include "hamlet/learned/preprocess.hpp"

namespace hamlet::learned {
namespace {

const std::array<const char*, 4> kSlots = {"h1", "c1", "h2", "c2"};

}  // namespace

std::pair<at::Tensor, at::Tensor> lstm_cell(const at::Tensor& x, const at::Tensor& h, const at::Tensor& c,
                                            const at::Tensor& w_ih, const at::Tensor& w_hh, const at::Tensor& b_ih,
                                            const at::Tensor& b_hh) {
  // One GEMM over [x | h] with the stacked weights and summed biases instead of two GEMMs and an add of
  // [R, 4H] results, and one sigmoid over all gates (contiguous) instead of three on strided slices: on the MNIST
  // MLP's 15,910 coordinates these elementwise passes, not the FLOPs, set the cost of a step.
  const int64_t hidden = h.size(-1);
  const at::Tensor gates =
      at::addmm(b_ih + b_hh, at::cat({x, h}, -1), at::cat({w_ih, w_hh}, 1).t());
  const at::Tensor sig = gates.sigmoid();
  // fast_tanh: Debian's at::tanh runs one value at a time (fast_tanh.hpp).
  const at::Tensor c_next =
      sig.narrow(-1, hidden, hidden) * c + sig.narrow(-1, 0, hidden) * fast_tanh(gates.narrow(-1, 2 * hidden, hidden));
  return {sig.narrow(-1, 3 * hidden, hidden) * fast_tanh(c_next), c_next};
}

const OptionSpec<LstmOptions>& LstmOptions::spec() {
  using O = LstmOptions;
  static const auto s =
      OptionSpec<O>("lstm")
          .add("preprocess", &O::preprocess, "gradient preprocessing P (input dimension 2)").architecture()
          .add("hidden", &O::hidden, "units H of both LSTM cells", checks::positive).architecture()
          .add("out_mul", &O::out_mul, "output scale: theta <- theta + out_mul * u", checks::finite)
          .add("seed", &O::seed, "seed of the weight initialisation", checks::non_negative)
          .add("dtype", &O::dtype, "weight dtype: float32 | float64", check_weight_dtype)
          .add("weights", &O::weights, "weight file this optimizer was loaded from").omit_when_empty()
          .add("kernel", &O::kernel, "fused loops (CPU) or the ATen reference expressions", checks::one_of({"fused", "tensor"}));
  return s;
}

LstmOptimizer::LstmOptimizer(LstmOptions options) : ConfiguredLearnedOptimizer(std::move(options)) {
  const int64_t d = options_.dim(), h = options_.hidden;
  const double bound = 1.0 / std::sqrt(static_cast<double>(h));
  at::Generator gen = make_generator(static_cast<uint64_t>(options_.seed));
  const auto dtype = weights_.dtype();
  for (const auto& [prefix, in] : {std::pair<std::string, int64_t>{"cell1.", d}, {"cell2.", h}}) {
    weights_.add(prefix + "weight_ih", uniform_weight({4 * h, in}, bound, gen, dtype));
    weights_.add(prefix + "weight_hh", uniform_weight({4 * h, h}, bound, gen, dtype));
    weights_.add(prefix + "bias_ih", uniform_weight({4 * h}, bound, gen, dtype));
    weights_.add(prefix + "bias_hh", uniform_weight({4 * h}, bound, gen, dtype));
  }
  weights_.add("head.weight", uniform_weight({1, h}, bound, gen, dtype));
  weights_.add("head.bias", uniform_weight({1}, bound, gen, dtype));
}

double LstmOptimizer::flops_per_coordinate() const {
  const double d = static_cast<double>(options_.dim()), h = static_cast<double>(options_.hidden);
  const double gates = 2 * 4 * h * (d + h) + 2 * 4 * h * (2 * h);
  const double cells = 2 * 15 * h;
  return gates + cells + 2 * h + (options_.preprocess ? 3 : 0) + 2;
}

double LstmOptimizer::activations_per_coordinate() const {
  return 2 * 5 * static_cast<double>(options_.hidden) + (options_.preprocess ? 1 : 0);
}

std::string LstmOptimizer::architecture() const {
  return detail::concat("lstm d=", options_.dim(), " hidden=", options_.hidden);
}

optim::OptimizerState LstmOptimizer::init(const TensorList& params) const {
  const auto dtype = compute_dtype(weights_.dtype(), params);
  optim::OptimizerState state;
  for (const char* slot : kSlots) {
    for (const auto& p : params) {
      std::vector<int64_t> shape(p.sizes().begin(), p.sizes().end());
      shape.push_back(options_.hidden);
      state.slots[slot].push_back(at::zeros(shape, p.options().dtype(dtype)));
    }
  }
  return state;
}

bool LstmOptimizer::uses_fused_kernel(const at::Tensor& x, const TensorList& weights) const {
  return options_.kernel == "fused" && lstm_fused_applies(x, weights);
}

optim::StepResult LstmOptimizer::update(const TensorList& params, const TensorList& grads, const at::Tensor& loss,
                                        const optim::OptimizerState& state) const {
  HAMLET_CHECK(grads.size() == params.size(), "lstm: ", grads.size(), " gradients for ", params.size(),
               " parameter tensors");
  const int64_t h = options_.hidden;
  const auto opts = params[0].options().dtype(compute_dtype(weights_.dtype(), params));
  // Evaluation (nothing requires grad): the blocked loop, without the full-size rows below.
  if (options_.kernel == "fused" && lstm_update_blocked_applies(params, grads, state, weights_.values(), opts)) {
    return lstm_update_blocked(options_, weights_.values(), params, grads, state, opts);
  }
  std::array<at::Tensor, 4> s;
  for (std::size_t i = 0; i < kSlots.size(); ++i) {
    const auto it = state.slots.find(kSlots[i]);
    HAMLET_CHECK(it != state.slots.end() && it->second.size() == params.size(), "lstm: state has no slot '", kSlots[i],
                 "' for every parameter tensor (call init() first)");
    s[i] = to_rows(it->second, h).to(opts);
  }
  const TensorList w = weights_.on(opts);
  const at::Tensor g = to_rows(grads).to(opts);
  const at::Tensor x = options_.preprocess ? preprocess(g, /*differentiable=*/true) : g.unsqueeze(-1);
  at::Tensor h1, c1, h2, c2, u;
  if (uses_fused_kernel(x, w)) {
    LstmStepRows k = lstm_fused_step(x, s[0], s[1], s[2], s[3], w);
    h1 = std::move(k.h1), c1 = std::move(k.c1), h2 = std::move(k.h2), c2 = std::move(k.c2), u = std::move(k.u);
  } else {
    std::tie(h1, c1) = lstm_cell(x, s[0], s[1], w[0], w[1], w[2], w[3]);
    std::tie(h2, c2) = lstm_cell(h1, s[2], s[3], w[4], w[5], w[6], w[7]);
    u = at::linear(h2, w[8], w[9]).squeeze(-1);
  }

  optim::StepResult result;
  const TensorList deltas = from_rows(u * options_.out_mul, params);
  for (std::size_t i = 0; i < params.size(); ++i) result.params.push_back(params[i] + deltas[i].to(params[i].dtype()));
  result.state.step = state.step + 1;
  const std::array<at::Tensor, 4> next = {h1, c1, h2, c2};
  for (std::size_t i = 0; i < kSlots.size(); ++i) result.state.slots[kSlots[i]] = from_rows(next[i], params, h);
  return result;
}

}  // namespace hamlet::learned
