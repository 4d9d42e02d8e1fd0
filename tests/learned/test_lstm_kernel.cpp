#include <cmath>
#include <vector>

#include <ATen/Parallel.h>
#include <torch/csrc/autograd/autograd.h>

#include "hamlet/core/seed.hpp"
#include "hamlet/learned/lstm.hpp"
#include "hamlet/learned/lstm_kernel.hpp"
#include "support/catch.hpp"
#include "support/test_support.hpp"

using namespace hamlet;
using namespace hamlet::learned;

namespace {

struct Inputs {
  at::Tensor x, h1, c1, h2, c2;
  std::vector<at::Tensor> w;
  std::vector<at::Tensor> all() const {
    std::vector<at::Tensor> out = {x, h1, c1, h2, c2};
    out.insert(out.end(), w.begin(), w.end());
    return out;
  }
};

// Random inputs of a step with `rows` coordinates, d features and H hidden units, every tensor a leaf that requires
// grad; weights of scale ~1 so that the gates are neither saturated nor linear.
Inputs random_inputs(int64_t rows, int64_t d, int64_t n, at::ScalarType dtype, uint64_t seed) {
  at::Generator gen = make_generator(seed);
  const auto o = at::TensorOptions().dtype(at::kDouble);
  auto leaf = [&](std::vector<int64_t> shape) { return at::randn(shape, gen, o).to(dtype).requires_grad_(true); };
  Inputs in{leaf({rows, d}), leaf({rows, n}), leaf({rows, n}), leaf({rows, n}), leaf({rows, n}), {}};
  for (const auto& shape : std::vector<std::vector<int64_t>>{{4 * n, d}, {4 * n, n}, {4 * n}, {4 * n}, {4 * n, n},
                                                             {4 * n, n}, {4 * n}, {4 * n}, {1, n}, {1}}) {
    in.w.push_back(leaf(shape));
  }
  return in;
}

// The reference: LstmOptimizer's tensor expressions (lstm_cell, itself tested against at::lstm_cell).
LstmStepRows tensor_step(const Inputs& in) {
  const auto& w = in.w;
  const auto [h1, c1] = lstm_cell(in.x, in.h1, in.c1, w[0], w[1], w[2], w[3]);
  const auto [h2, c2] = lstm_cell(h1, in.h2, in.c2, w[4], w[5], w[6], w[7]);
  return {at::linear(h2, w[8], w[9]).squeeze(-1), h1, c1, h2, c2};
}

// A scalar that reaches every output with its own random weights (so no cotangent is zero or shared).
at::Tensor functional(const LstmStepRows& s, uint64_t seed, bool only_u = false) {
  at::Generator gen = make_generator(seed);
  auto dot = [&](const at::Tensor& t) { return (t * at::randn(t.sizes(), gen, t.options())).sum(); };
  if (only_u) return dot(s.u);
  return dot(s.u) + dot(s.h1) + dot(s.c1) + dot(s.h2) + dot(s.c2);
}

struct Comparison {
  double values = 0, grads = 0;  // largest relative difference over the outputs, over the inputs' gradients
};

Comparison compare(int64_t rows, int64_t d, int64_t n, at::ScalarType dtype, bool only_u = false) {
  const Inputs in = random_inputs(rows, d, n, dtype, 11);
  const LstmStepRows fused = lstm_fused_step(in.x, in.h1, in.c1, in.h2, in.c2, in.w);
  const LstmStepRows ref = tensor_step(in);
  Comparison c;
  const std::vector<std::pair<at::Tensor, at::Tensor>> pairs = {
      {fused.u, ref.u}, {fused.h1, ref.h1}, {fused.c1, ref.c1}, {fused.h2, ref.h2}, {fused.c2, ref.c2}};
  for (const auto& [a, b] : pairs) c.values = std::max(c.values, test::max_rel_diff(a, b));
  const auto g_fused = torch::autograd::grad({functional(fused, 5, only_u)}, in.all(), {}, false, false, true);
  const auto g_ref = torch::autograd::grad({functional(ref, 5, only_u)}, in.all(), {}, false, false, true);
  REQUIRE(g_fused.size() == g_ref.size());
  for (std::size_t i = 0; i < g_ref.size(); ++i) {
    const at::Tensor a = g_fused[i].defined() ? g_fused[i] : at::zeros_like(in.all()[i]);
    const at::Tensor b = g_ref[i].defined() ? g_ref[i] : at::zeros_like(in.all()[i]);
    c.grads = std::max(c.grads, test::max_rel_diff(a, b));
  }
  return c;
}

}  // namespace

TEST_CASE("lstm kernel: one coordinate with hand-computed gates, state and head") {
  // H = 1, d = 1: a = x W_ih + h W_hh + b_ih + b_hh per gate, in the order i f g o.
  const auto o = at::TensorOptions().dtype(at::kDouble);
  const double x = 0.5, h1 = -0.3, c1 = 0.8, h2 = 0.2, c2 = -0.4;
  const std::vector<double> wi1 = {0.1, -0.2, 0.3, 0.4}, wh1 = {0.5, 0.6, -0.7, 0.8}, b1 = {0.05, -0.1, 0.2, 0.0};
  const std::vector<double> wi2 = {-0.3, 0.2, 0.1, -0.5}, wh2 = {0.4, -0.6, 0.9, 0.3}, b2 = {0.1, 0.2, -0.3, 0.4};
  const double head_w = 1.5, head_b = -0.25;
  auto col = [&](const std::vector<double>& v) { return at::tensor(v, o).reshape({4, 1}); };
  const std::vector<at::Tensor> w = {col(wi1), col(wh1), at::tensor(b1, o), at::zeros({4}, o),
                                     col(wi2), col(wh2), at::zeros({4}, o), at::tensor(b2, o),
                                     at::full({1, 1}, head_w, o), at::full({1}, head_b, o)};
  auto s = [](double v) { return 1 / (1 + std::exp(-v)); };
  auto cell = [&](double in, double h, double c, const std::vector<double>& wi, const std::vector<double>& wh,
                  const std::vector<double>& b) {
    double a[4];
    for (int k = 0; k < 4; ++k) a[k] = in * wi[k] + h * wh[k] + b[k];
    const double c_next = s(a[1]) * c + s(a[0]) * std::tanh(a[2]);
    return std::pair<double, double>{s(a[3]) * std::tanh(c_next), c_next};
  };
  const auto [h1n, c1n] = cell(x, h1, c1, wi1, wh1, b1);
  const auto [h2n, c2n] = cell(h1n, h2, c2, wi2, wh2, b2);
  auto one = [&](double v) { return at::full({1, 1}, v, o); };
  const LstmStepRows r = lstm_fused_step(one(x), one(h1), one(c1), one(h2), one(c2), w);
  CHECK(r.h1.item<double>() == Approx(h1n).epsilon(1e-14));
  CHECK(r.c1.item<double>() == Approx(c1n).epsilon(1e-14));
  CHECK(r.h2.item<double>() == Approx(h2n).epsilon(1e-14));
  CHECK(r.c2.item<double>() == Approx(c2n).epsilon(1e-14));
  CHECK(r.u.item<double>() == Approx(head_w * h2n + head_b).epsilon(1e-14));
}

TEST_CASE("lstm kernel: values and the gradients of every input equal the tensor expressions") {
  SECTION("float64, d = 2 and d = 1, at 1e-12") {
    for (int64_t d : {2, 1}) {
      const Comparison c = compare(37, d, 5, at::kDouble);
      CHECK(c.values < 1e-12);
      CHECK(c.grads < 1e-12);
    }
  }
  SECTION("float64, H = 20 (the protocol's width) and a cotangent on u alone") {
    const Comparison c = compare(70, 2, 20, at::kDouble, /*only_u=*/true);
    CHECK(c.values < 1e-12);
    CHECK(c.grads < 1e-12);
  }
  SECTION("float32: rounding only") {
    const Comparison c = compare(300, 2, 20, at::kFloat);
    CHECK(c.values < 1e-5);
    CHECK(c.grads < 1e-4);
  }
}

TEST_CASE("lstm kernel: the optimizer's updates and meta-gradients over three steps equal kernel=tensor") {
  const auto f64 = at::TensorOptions().dtype(at::kDouble);
  at::Generator gen = make_generator(3);
  const TensorList params = {at::randn({3, 4}, gen, f64), at::randn({4}, gen, f64)};
  auto unroll = [&](const std::string& kernel, TensorList* weights_out) {
    LstmOptions o;
    o.preprocess = true;
    o.dtype = "float64";
    o.out_mul = 0.1;
    o.kernel = kernel;
    o.seed = 4;
    LstmOptimizer opt(o);
    TensorList w;
    for (const auto& t : opt.weights()) w.push_back(t.detach().requires_grad_(true));
    opt.set_weights(w);
    *weights_out = w;
    optim::OptimizerState state = opt.init(params);
    TensorList theta = params;
    at::Tensor loss = at::zeros({}, f64);
    for (int step = 0; step < 3; ++step) {
      TensorList g;
      for (const auto& p : theta) g.push_back((p * p * p).detach());  // a fixed gradient field, detached as in bptt
      optim::StepResult r = opt.update(theta, g, at::Tensor(), state);
      theta = r.params;
      state = r.state;
      for (const auto& p : theta) loss = loss + (p * p).sum();
    }
    return std::pair<TensorList, at::Tensor>{theta, loss};
  };
  TensorList w_fused, w_tensor;
  const auto [theta_fused, loss_fused] = unroll("fused", &w_fused);
  const auto [theta_tensor, loss_tensor] = unroll("tensor", &w_tensor);
  for (std::size_t i = 0; i < params.size(); ++i) CHECK(test::max_rel_diff(theta_fused[i], theta_tensor[i]) < 1e-12);
  const auto g_fused = torch::autograd::grad({loss_fused}, w_fused, {}, false, false, true);
  const auto g_tensor = torch::autograd::grad({loss_tensor}, w_tensor, {}, false, false, true);
  for (std::size_t i = 0; i < g_fused.size(); ++i) {
    INFO("weight " << i);
    REQUIRE(g_fused[i].defined());
    CHECK(test::max_rel_diff(g_fused[i], g_tensor[i]) < 1e-12);
  }
}

TEST_CASE("lstm kernel: where it applies, bad shapes and options are errors") {
  const Inputs in = random_inputs(4, 2, 3, at::kDouble, 1);
  CHECK(lstm_fused_applies(in.x, in.w));
  std::vector<at::Tensor> mixed = in.w;
  mixed[0] = mixed[0].to(at::kFloat);
  CHECK_FALSE(lstm_fused_applies(in.x, mixed));
  CHECK_FALSE(lstm_fused_applies(in.x.to(at::kFloat), in.w));
  std::vector<at::Tensor> wrong = in.w;
  wrong[1] = at::zeros({12, 4}, at::kDouble);
  CHECK_THROWS_WITH(lstm_fused_step(in.x, in.h1, in.c1, in.h2, in.c2, wrong),
                    Catch::Contains("weight 1 must be [12, 3]"));
  CHECK_THROWS_WITH(lstm_fused_step(in.x, in.h1.narrow(0, 0, 3), in.c1, in.h2, in.c2, in.w),
                    Catch::Contains("every state must be [R, H] = [4, 3]"));
  CHECK_THROWS_WITH(LstmOptions::from_map({{"kernel", "gpu"}}), Catch::Contains("lstm.kernel must be fused or tensor"));
  CHECK(LstmOptions::from_map({{"kernel", "tensor"}}).kernel == "tensor");
  CHECK(LstmOptions{}.to_map().at("kernel") == "fused");
}

namespace {

// Parameters of B = 3 problems in three tensors whose coordinate counts are not multiples of the evaluation block
// (2,100 rows: four full blocks and a partial one; 105; 3), and a gradient field that reaches both branches of P
// (|g| below e^−10, zeros) and the saturated gates (large |g| through the raw feature).
TensorList blocked_params(at::ScalarType dtype) {
  at::Generator gen = make_generator(21);
  const auto o = at::TensorOptions().dtype(at::kDouble);
  return {at::randn({3, 700}, gen, o).to(dtype), at::randn({3, 5, 7}, gen, o).to(dtype), at::randn({3}, gen, o).to(dtype)};
}

TensorList blocked_grads(const TensorList& theta, int step) {
  TensorList g;
  for (const auto& p : theta) {
    at::Tensor x = p * p * p - p;
    x.view(-1).narrow(0, 0, 1).zero_();
    if (x.numel() > 10) x.view(-1).narrow(0, 1 + step, 4).mul_(1e-7);
    g.push_back(x);
  }
  return g;
}

LstmOptimizer blocked_optimizer(const std::string& kernel, const std::string& dtype, bool preprocess, int64_t hidden) {
  LstmOptions o;
  o.preprocess = preprocess;
  o.dtype = dtype;
  o.hidden = hidden;
  o.out_mul = 0.1;
  o.kernel = kernel;
  o.seed = 7;
  return LstmOptimizer(o);
}

// Largest relative difference (max_rel_diff) over the parameters and every state slot after `steps` steps of the
// blocked kernel (called directly) and of kernel=tensor; also checks that update() with kernel=fused takes the
// blocked path (the same bits as the direct call).
double blocked_vs_tensor(const std::string& dtype, bool preprocess, int64_t hidden, int steps) {
  at::NoGradGuard no_grad;
  const at::ScalarType st = dtype == "float64" ? at::kDouble : at::kFloat;
  const LstmOptimizer fused = blocked_optimizer("fused", dtype, preprocess, hidden);
  const LstmOptimizer tensor = blocked_optimizer("tensor", dtype, preprocess, hidden);
  const TensorList params = blocked_params(st);
  const auto opts = at::TensorOptions().dtype(st);
  optim::OptimizerState sa = fused.init(params), sb = tensor.init(params);
  TensorList ta = params, tb = params;
  double worst = 0;
  for (int step = 0; step < steps; ++step) {
    const optim::StepResult a =
        lstm_update_blocked(fused.settings(), fused.weights(), ta, blocked_grads(ta, step), sa, opts);
    const optim::StepResult via_update = fused.update(ta, blocked_grads(ta, step), at::Tensor(), sa);
    const optim::StepResult b = tensor.update(tb, blocked_grads(tb, step), at::Tensor(), sb);
    REQUIRE(a.state.step == b.state.step);
    for (std::size_t i = 0; i < params.size(); ++i) {
      REQUIRE(a.params[i].sizes() == b.params[i].sizes());
      CHECK(a.params[i].scalar_type() == st);
      CHECK(at::equal(a.params[i], via_update.params[i]));
      worst = std::max(worst, test::max_rel_diff(a.params[i], b.params[i]));
      for (const char* slot : {"h1", "c1", "h2", "c2"}) {
        REQUIRE(a.state.slots.at(slot)[i].sizes() == b.state.slots.at(slot)[i].sizes());
        CHECK(at::equal(a.state.slots.at(slot)[i], via_update.state.slots.at(slot)[i]));
        worst = std::max(worst, test::max_rel_diff(a.state.slots.at(slot)[i], b.state.slots.at(slot)[i]));
      }
    }
    ta = a.params, sa = a.state, tb = b.params, sb = b.state;
  }
  return worst;
}

}  // namespace

TEST_CASE("lstm blocked evaluation: parameters and state over several steps equal kernel=tensor") {
  SECTION("float64 at 1e-12: H = 20 and H = 5, with and without P") {
    for (const int64_t hidden : {20, 5}) {
      for (const bool preprocess : {true, false}) {
        INFO("H = " << hidden << ", preprocess " << preprocess);
        CHECK(blocked_vs_tensor("float64", preprocess, hidden, 4) < 1e-12);
      }
    }
  }
  SECTION("float32 to rounding: H = 20 (AVX-512 loop where the CPU has it), H = 4 and H = 5 (plain loops)") {
    for (const int64_t hidden : {20, 4, 5}) {
      for (const bool preprocess : {true, false}) {
        INFO("H = " << hidden << ", preprocess " << preprocess);
        CHECK(blocked_vs_tensor("float32", preprocess, hidden, 4) < 5e-6);
      }
    }
  }
}

TEST_CASE("lstm blocked evaluation: the same bits on one and two threads") {
  at::NoGradGuard no_grad;
  const int previous = at::get_num_threads();
  for (const std::string dtype : {"float32", "float64"}) {
    const LstmOptimizer opt = blocked_optimizer("fused", dtype, true, 20);
    const TensorList params = blocked_params(dtype == "float64" ? at::kDouble : at::kFloat);
    optim::OptimizerState state = opt.init(params);
    const optim::StepResult first = opt.update(params, blocked_grads(params, 0), at::Tensor(), state);
    std::vector<optim::StepResult> runs;
    for (const int threads : {1, 2}) {
      at::set_num_threads(threads);
      runs.push_back(opt.update(first.params, blocked_grads(first.params, 1), at::Tensor(), first.state));
    }
    at::set_num_threads(previous);
    for (std::size_t i = 0; i < params.size(); ++i) {
      CHECK(at::equal(runs[0].params[i], runs[1].params[i]));
      for (const char* slot : {"h1", "c1", "h2", "c2"}) {
        CHECK(at::equal(runs[0].state.slots.at(slot)[i], runs[1].state.slots.at(slot)[i]));
      }
    }
  }
}

TEST_CASE("lstm blocked evaluation: where it applies, and the flop count") {
  const LstmOptimizer opt = blocked_optimizer("fused", "float32", true, 20);
  const TensorList params = blocked_params(at::kFloat);
  const optim::OptimizerState state = opt.init(params);
  const auto f32 = at::TensorOptions().dtype(at::kFloat);
  CHECK(lstm_update_blocked_applies(params, blocked_grads(params, 0), state, opt.weights(), f32));
  CHECK_FALSE(lstm_update_blocked_applies(params, blocked_grads(params, 0), state, opt.weights(),
                                          f32.dtype(at::kDouble)));
  TensorList trainable;
  for (const auto& w : opt.weights()) trainable.push_back(w.detach().requires_grad_(true));
  CHECK_FALSE(lstm_update_blocked_applies(params, blocked_grads(params, 0), state, trainable, f32));
  TensorList leaf = params;
  leaf[1] = leaf[1].detach().requires_grad_(true);
  CHECK_FALSE(lstm_update_blocked_applies(leaf, blocked_grads(params, 0), state, opt.weights(), f32));
  optim::OptimizerState missing = state;
  missing.slots.erase("c2");
  CHECK_FALSE(lstm_update_blocked_applies(params, blocked_grads(params, 0), missing, opt.weights(), f32));
  // 2·80·22 + 2·80·40 + 2·15·20 + 2·20 + 3 + 2 (lstm.hpp).
  CHECK(opt.flops_per_coordinate() == 10565.0);
  CHECK(blocked_optimizer("fused", "float32", false, 20).flops_per_coordinate() == 10562.0 - 160.0);
}
