#include <ATen/Parallel.h>
#include <torch/csrc/autograd/autograd.h>

#include <cmath>
#include <string>

#include "hamlet/core/seed.hpp"
#include "hamlet/learned/phnn_paper.hpp"
#include "learned_fixtures.hpp"
#include "support/catch.hpp"
#include "support/test_support.hpp"

using namespace hamlet;
using namespace hamlet::learned;

namespace {

at::Tensor T(const std::vector<double>& values, std::vector<int64_t> shape) {
  return at::tensor(values, at::kDouble).reshape(shape);
}

double scalar(const at::Tensor& x) { return x.item<double>(); }

PhnnPaper make(bool preprocess, bool norm, const std::string& mass_factor = "LLt", bool keep_bias = true,
               int64_t seed = 0) {
  PhnnPaperOptions o;
  o.preprocess = preprocess;
  o.norm = norm;
  o.mass_factor = mass_factor;
  o.keep_unused_L_bias = keep_bias;
  o.seed = seed;
  o.dtype = "float64";
  return PhnnPaper(o);
}

// clang-format off
// docs/methods.md 1.10, d = 1: G, V, D, L (bias unused), W_u, W_s.
TensorList weights_d1() {
  return {T({1.0}, {1, 1}), T({0.5}, {1}), T({2.0}, {1, 1}), T({-0.1}, {1}),
          T({-1.0}, {1, 1}), T({0.2}, {1}), T({0.5}, {1, 1}), T({0.3}, {1}),
          T({0.1, 0.2, 0.3, 0.4}, {2, 2}),
          T({0.8}, {1, 1}), T({0.7}, {1}),
          T({1.5, -0.5}, {1, 2}), T({0.25, 0.75}, {1, 2}), T({0.05}, {1})};
}

// docs/methods.md 1.10, d = 2 (the L bias is not given there: any value, it is unused).
TensorList weights_d2() {
  return {T({-1, 0, 0, -1}, {2, 2}), T({0, 0}, {2}), T({1, 0, 0, -1}, {2, 2}), T({0, 0}, {2}),
          T({1, 0, 0, 1}, {2, 2}), T({1, 1}, {2}), T({1, 0, 0, 1}, {2, 2}), T({0, 0.1}, {2}),
          T({0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, -0.1, 0, 0.1, 0, 0, 0.1, 0, -0.1}, {4, 4}),
          T({1, 0, 2, 1}, {2, 2}), T({0.3, -0.2}, {2}),
          T({1, -1, 0.5, 0.5}, {1, 4}), T({0.1, 0.2, 0.3, 0.4}, {1, 4}), T({0}, {1})};
}
// clang-format on

}  // namespace

TEST_CASE("phnn-paper: parameter counts, names and architecture") {
  CHECK(make(false, true).num_params() == 19);
  CHECK(make(true, true).num_params() == 55);
  CHECK(make(false, true, "LLt", false).num_params() == 18);
  CHECK(make(true, true, "LLt", false).num_params() == 53);
  const auto names = make(true, true).weight_names();
  CHECK(names == std::vector<std::string>{"G.0.weight", "G.0.bias", "G.2.weight", "G.2.bias", "V.0.weight", "V.0.bias",
                                          "V.2.weight", "V.2.bias", "D.weight", "L.weight", "L.bias", "W_u.weight",
                                          "W_s.weight", "W_s.bias"});
  CHECK(make(true, true, "LtL").architecture() == "phnn-paper d=2 mass_factor=LtL L_bias=true");
  // Dropping the unused bias leaves every other initial value as it was.
  const auto with = make(true, true, "LLt", true, 7).weights(), without = make(true, true, "LLt", false, 7).weights();
  CHECK(at::equal(with[11], without[10]));
  // Default dtype float32; LibTorch default init bounds 1/sqrt(fan_in).
  PhnnPaper f32{PhnnPaperOptions{}};
  for (const auto& w : f32.weights()) CHECK(w.scalar_type() == at::kFloat);
  CHECK(f32.weights()[8].abs().max().item<double>() <= 1.0 / std::sqrt(2.0));
  CHECK(f32.learning_rate() == 0.001);
}

TEST_CASE("phnn-paper: known answers of docs/methods.md 1.10") {
  SECTION("d = 1, no preprocessing") {
    PhnnPaper opt = make(false, false);
    opt.set_weights(weights_d1());
    const auto f = opt.forward(T({-0.6}, {1}), T({0.4}, {1}));
    CHECK(std::abs(scalar(f.G) + 0.1) < 1e-9);
    CHECK(std::abs(scalar(f.a) - 0.7) < 1e-9);
    CHECK(std::abs(scalar(f.inv_mass) - 0.64) < 1e-9);
    CHECK(std::abs(scalar(f.r_q) - 0.15) < 1e-9);
    CHECK(std::abs(scalar(f.r_p) - 0.37) < 1e-9);
    CHECK(std::abs(scalar(f.q_dot) - 0.25) < 1e-9);
    CHECK(std::abs(scalar(f.q_ddot) + 0.7488) < 1e-9);
    CHECK(std::abs(scalar(f.u) - 0.675) < 1e-9);
    CHECK(std::abs(scalar(f.s_next) + 0.4491) < 1e-9);

    // Through update(): θ 2.0 → 2.000675; the carried state is s' (norm off) or ±1 (norm on, one element).
    optim::OptimizerState state = opt.init({T({2.0}, {1, 1})});
    state.slots["s"][0] = T({0.4}, {1, 1});
    const auto r = opt.update({T({2.0}, {1, 1})}, {T({-0.6}, {1, 1})}, at::Tensor(), state);
    CHECK(std::abs(scalar(r.params[0]) - 2.000675) < 1e-9);
    CHECK(std::abs(scalar(r.state.slots.at("s")[0]) + 0.4491) < 1e-9);
    CHECK(r.state.step == 1);
    PhnnPaper normed = make(false, true);
    normed.set_weights(weights_d1());
    CHECK(scalar(normed.update({T({2.0}, {1, 1})}, {T({-0.6}, {1, 1})}, at::Tensor(), state).state.slots.at("s")[0]) ==
          -1.0);
  }
  SECTION("d = 2 with preprocessing, LLt and LtL") {
    PhnnPaper opt = make(true, false);
    opt.set_weights(weights_d2());
    const auto f = opt.forward(T({-0.01}, {1}), T({0.5}, {1}));
    CHECK(test::max_abs_diff(f.q[0], T({-0.4605169186, -1}, {2})) < 1e-9);
    CHECK(test::max_abs_diff(f.sigma[0], T({-0.0693147161, 1}, {2})) < 1e-9);
    CHECK(test::max_abs_diff(f.G[0], T({0.4605169186, -1}, {2})) < 1e-9);
    CHECK(test::max_abs_diff(f.a[0], T({0.5394830814, 0.1}, {2})) < 1e-9);
    CHECK(test::max_abs_diff(f.inv_mass, T({1, 2, 2, 5}, {2, 2})) < 1e-9);
    CHECK(test::max_abs_diff(f.r_q[0], T({0.4531538933, 1.0812212395}, {2})) < 1e-9);
    CHECK(test::max_abs_diff(f.r_p[0], T({-0.0608797797, -0.09}, {2})) < 1e-9);
    CHECK(test::max_abs_diff(f.q_dot[0], T({-0.5224686094, -0.0812212395}, {2})) < 1e-9);
    CHECK(test::max_abs_diff((f.G - f.a - f.r_p)[0], T({-0.0180863831, -1.01}, {2})) < 1e-9);
    CHECK(test::max_abs_diff(f.q_ddot[0], T({-2.0380863831, -5.0861727661}, {2})) < 1e-9);
    CHECK(std::abs(scalar(f.u) + 1.1715058292) < 1e-9);
    CHECK(std::abs(scalar(f.s_next) + 2.7143861302) < 1e-9);

    PhnnPaper ltl = make(true, false, "LtL");
    ltl.set_weights(weights_d2());
    const auto g = ltl.forward(T({-0.01}, {1}), T({0.5}, {1}));
    CHECK(test::max_abs_diff(g.inv_mass, T({5, 2, 2, 1}, {2, 2})) < 1e-9);
    CHECK(test::max_abs_diff(g.q_ddot[0], T({-2.1104319153, -1.0461727661}, {2})) < 1e-9);
    CHECK(std::abs(scalar(g.s_next) + 1.1200897899) < 1e-9);
    CHECK(std::abs(scalar(g.u) + 1.1715058292) < 1e-9);
  }
}

TEST_CASE("phnn-paper: per-tensor per-problem normalisation of the state") {
  PhnnPaper opt = make(false, true, "LLt", true, 3);
  // Two problems, tensors [2, 3] and [2, 1]: each (tensor, problem) block of s has unit norm after a step.
  const TensorList params = {at::zeros({2, 3}, at::kDouble), at::zeros({2, 1}, at::kDouble)};
  const TensorList grads = {T({0.3, -1.0, 2.0, 0.1, 0.5, -0.7}, {2, 3}), T({0.4, -0.2}, {2, 1})};
  const auto r = opt.update(params, grads, at::Tensor(), opt.init(params));
  const at::Tensor norms = r.state.slots.at("s")[0].pow(2).sum(1).sqrt();
  CHECK(test::max_abs_diff(norms, at::ones({2}, at::kDouble)) < 1e-12);
  CHECK(test::max_abs_diff(r.state.slots.at("s")[1].abs(), at::ones({2, 1}, at::kDouble)) < 1e-12);

  SECTION("all-zero blocks stay zero and keep a finite gradient") {
    const at::Tensor rows = T({0, 0, 0, 3, 4, 0, 0, -2}, {8}).requires_grad_(true);
    const TensorList like = {at::zeros({2, 3}), at::zeros({2, 1})};
    const at::Tensor n = normalise_per_tensor(rows, like);
    CHECK(test::max_abs_diff(n, T({0, 0, 0, 0.6, 0.8, 0, 0, -1}, {8})) < 1e-15);
    const at::Tensor g = torch::autograd::grad({(n * at::arange(8, at::kDouble)).sum()}, {rows})[0];
    CHECK(g.isfinite().all().item<bool>());
  }
}

TEST_CASE("phnn-paper: which weights receive meta-gradients (docs/methods.md 1.7)") {
  // `steps` consecutive updates of two tensors for two problems; meta-loss Σ θ_steps². Two updates suffice for
  // the 1.7 split. The full sets need three: σ = φ(0) has a zero sign/raw column at the first step, so D_pp only
  // sees a non-zero σ at step 2, whose s' must then reach a later update.
  const auto meta_grads = [](PhnnPaper& opt, int steps) {
    opt.set_trainable(true);
    at::Generator gen = make_generator(11);
    const TensorList params = {at::randn({2, 4}, gen, at::kDouble), at::randn({2, 3}, gen, at::kDouble)};
    // Magnitudes from 1e-6 to 10 so that both branches of P and both signs occur.
    const auto grad = [&] {
      TensorList g;
      for (const auto& p : params) {
        // Drawn in sequence (the order GCC evaluated the product's operands in when the expected counts were set):
        // the evaluation order of a product's operands is unspecified, and clang draws them the other way round.
        const at::Tensor scale = at::pow(10.0, at::randint(-6, 2, p.sizes(), gen, at::kDouble));
        g.push_back(at::randn(p.sizes(), gen, at::kDouble) * scale);
      }
      return g;
    };
    optim::StepResult r = opt.update(params, grad(), at::Tensor(), opt.init(params));
    for (int t = 1; t < steps; ++t) r = opt.update(r.params, grad(), at::Tensor(), r.state);
    const at::Tensor loss = r.params[0].pow(2).sum() + r.params[1].pow(2).sum();
    TensorList g = torch::autograd::grad({loss}, opt.weights(), {}, false, false, /*allow_unused=*/true);
    for (std::size_t i = 0; i < g.size(); ++i) {
      if (!g[i].defined()) g[i] = at::zeros_like(opt.weights()[i]);
    }
    return g;
  };
  const auto index = [](const PhnnPaper& opt, const std::string& name) {
    const auto names = opt.weight_names();
    return static_cast<std::size_t>(std::find(names.begin(), names.end(), name) - names.begin());
  };
  const auto count_nonzero = [](const TensorList& g) {
    int64_t n = 0;
    for (const auto& t : g) n += t.ne(0).sum().item<int64_t>();
    return n;
  };

  SECTION("preprocessing, state_grad = false: exactly G, L, D rows 2-3 and W_s get none; the other 24 do") {
    PhnnPaper opt = make(true, false, "LLt", true, 5);
    const TensorList g = meta_grads(opt, 2);
    for (const char* dead :
         {"G.0.weight", "G.0.bias", "G.2.weight", "G.2.bias", "L.weight", "L.bias", "W_s.weight", "W_s.bias"}) {
      INFO(dead);
      CHECK(g[index(opt, dead)].abs().max().item<double>() == 0.0);
    }
    const at::Tensor dg = g[index(opt, "D.weight")];
    CHECK(dg.narrow(0, 2, 2).abs().max().item<double>() == 0.0);
    CHECK(dg.narrow(0, 0, 2).ne(0).all().item<bool>());
    for (const char* live : {"V.0.weight", "V.0.bias", "V.2.weight", "V.2.bias", "W_u.weight"}) {
      INFO(live);
      CHECK(g[index(opt, live)].ne(0).all().item<bool>());
    }
    CHECK(count_nonzero(g) == 24);
    PhnnPaper longer = make(true, false, "LLt", true, 5);
    CHECK(count_nonzero(meta_grads(longer, 3)) == 24);
  }
  SECTION("preprocessing, state_grad = true: all 53 used weights get gradients, the L bias none") {
    PhnnPaperOptions o;
    o.preprocess = true;
    o.norm = false;
    o.state_grad = true;
    o.seed = 5;
    o.dtype = "float64";
    PhnnPaper opt(o);
    const TensorList g = meta_grads(opt, 3);
    CHECK(count_nonzero(g) == 53);
    CHECK(g[index(opt, "L.bias")].abs().max().item<double>() == 0.0);
  }
  SECTION("quadratic (no preprocessing, norm on): all 18 used weights get gradients, the L bias none") {
    PhnnPaper opt = make(false, true, "LLt", true, 5);
    const TensorList g = meta_grads(opt, 3);
    CHECK(count_nonzero(g) == 18);
    CHECK(g[index(opt, "L.bias")].abs().max().item<double>() == 0.0);
  }
}

namespace {

// Three evaluation updates of a fused and a tensor-path phnn-paper with the same (perturbed) weights, each step
// from the tensor path's point; the largest |a − b| / (1 + |b|) over parameters and state.
double fused_vs_tensor(const PhnnPaperOptions& o, at::ScalarType dtype, const TensorList& extra_grads = {}) {
  test::FusedAndTensor<PhnnPaper> f(o, dtype, /*seed=*/5, /*last_dim=*/6);
  TensorList params = f.params;
  optim::OptimizerState state = f.tensor.init(params);
  double worst = 0;
  at::NoGradGuard no_grad;
  for (int step = 0; step < 3; ++step) {
    TensorList g;
    for (const auto& p : params) g.push_back(0.1 * p + 0.01 * at::randn(p.sizes(), f.gen, f.opts));
    if (step == 1 && !extra_grads.empty()) g = extra_grads;
    CHECK(f.fused.uses_fused_kernel(to_rows(g), to_rows(state.slots.at("s"))));
    CHECK(f.fused.uses_fused_update(params, g, state.slots.at("s")));
    CHECK_FALSE(f.tensor.uses_fused_update(params, g, state.slots.at("s")));
    const auto rf = f.fused.update(params, g, at::Tensor(), state);
    const auto rt = f.tensor.update(params, g, at::Tensor(), state);
    for (std::size_t i = 0; i < params.size(); ++i) {
      worst = std::max(worst, test::max_rel_diff(rf.params[i], rt.params[i]));
      worst = std::max(worst, test::max_rel_diff(rf.state.slots.at("s")[i], rt.state.slots.at("s")[i]));
    }
    params = rt.params;
    state = rt.state;
  }
  return worst;
}

}  // namespace

TEST_CASE("phnn-paper: the fused evaluation kernel equals the tensor expressions (float64 1e-12, float32 rounding)") {
  for (const bool preprocess : {false, true}) {
    for (const std::string factor : {"LLt", "LtL"}) {
      for (const bool norm : {false, true}) {
        PhnnPaperOptions o;
        o.preprocess = preprocess;
        o.mass_factor = factor;
        o.norm = norm;
        o.out_mul = 0.1;
        INFO("preprocess=" << preprocess << " mass_factor=" << factor << " norm=" << norm);
        CHECK(fused_vs_tensor(o, at::kDouble) < 1e-12);
        CHECK(fused_vs_tensor(o, at::kFloat) < 5e-6);
      }
    }
  }
  SECTION("P's branches: zero, both sides of the threshold e^-10, large gradients") {
    PhnnPaperOptions o;
    o.preprocess = true;
    const double t = std::exp(-10.0);
    const TensorList g = {T({0.0, t, t * 0.999, -t * 1.001, 3e3, -1e-20, 1.0, -2.0, 5e-5, -5e-5, 0.25, 7.0,
                             0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
                            {2, 3, 4}),
                          T({1e-3, -1e-3, 0, 1e-6, -1e-6, 2, 0, 0, 0, 0, 0, 0}, {2, 6})};
    CHECK(fused_vs_tensor(o, at::kDouble, g) < 1e-12);
  }
  SECTION("used only where it applies") {
    PhnnPaper opt;
    const at::Tensor g = at::zeros({4}), s = at::zeros({4});
    CHECK(opt.uses_fused_kernel(g, s));
    CHECK_FALSE(opt.uses_fused_kernel(g.clone().requires_grad_(true), s));
    CHECK_FALSE(opt.uses_fused_kernel(g, s.clone().requires_grad_(true)));
    opt.set_trainable(true);
    CHECK_FALSE(opt.uses_fused_kernel(g, s));  // d = 1: s' feeds the next step differentiably
    PhnnPaperOptions mnist;
    mnist.preprocess = true;
    PhnnPaper trained(mnist);
    trained.set_trainable(true);
    CHECK(trained.uses_fused_kernel(g, s));  // the autograd node
    mnist.state_grad = true;
    PhnnPaper ablation(mnist);
    ablation.set_trainable(true);
    CHECK_FALSE(ablation.uses_fused_kernel(g, s));
    PhnnPaperOptions o;
    o.kernel = "tensor";
    CHECK_FALSE(PhnnPaper(o).uses_fused_kernel(g, s));
    o.kernel = "loop";
    CHECK_THROWS_WITH(o.validate(), Catch::Contains("phnn-paper.kernel must be fused or tensor, got 'loop'"));
  }
}

TEST_CASE("phnn-paper: meta-gradients through the kernel's autograd node equal autograd through the tensor path") {
  // Four updates of two tensors for two problems, gradients over six decades so that both branches of P occur;
  // meta-loss Σ θ² after every step. float64 at 1e-12, float32 to rounding.
  for (const auto dtype : {at::kDouble, at::kFloat}) {
    for (const bool norm : {false, true}) {
      const auto run = [&](const std::string& kernel) {
        PhnnPaperOptions o;
        o.preprocess = true;
        o.norm = norm;
        o.seed = 7;
        o.kernel = kernel;
        o.dtype = dtype == at::kDouble ? "float64" : "float32";
        PhnnPaper opt(o);
        opt.set_trainable(true);
        at::Generator gen = make_generator(12);
        const auto opts = at::TensorOptions().dtype(dtype);
        TensorList theta = {at::randn({2, 4}, gen, opts), at::randn({2, 3}, gen, opts)};
        optim::OptimizerState state = opt.init(theta);
        at::Tensor loss = at::zeros({}, opts);
        for (int step = 0; step < 4; ++step) {
          TensorList g;
          for (const auto& p : theta) {
            const at::Tensor scale = at::pow(10.0, at::randint(-6, 1, p.sizes(), gen, opts));  // drawn first, as above
            g.push_back(at::randn(p.sizes(), gen, opts) * scale);
          }
          CHECK(opt.uses_fused_kernel(to_rows(g), to_rows(state.slots.at("s"))) == (kernel == "fused"));
          const optim::StepResult r = opt.update(theta, g, at::Tensor(), state);
          theta = r.params;
          state = r.state;
          for (const auto& p : theta) loss = loss + (p * p).sum();
        }
        TensorList grads = torch::autograd::grad({loss}, opt.weights(), {}, false, false, /*allow_unused=*/true);
        for (std::size_t i = 0; i < grads.size(); ++i) {
          if (!grads[i].defined()) grads[i] = at::zeros_like(opt.weights()[i]);
        }
        return grads;
      };
      const TensorList fused = run("fused"), tensor = run("tensor");
      double worst = 0;
      for (std::size_t i = 0; i < fused.size(); ++i) worst = std::max(worst, test::max_rel_diff(fused[i], tensor[i]));
      INFO("dtype " << dtype << ", norm " << norm);
      CHECK(worst < (dtype == at::kDouble ? 1e-12 : 1e-4));
    }
  }
}

namespace {

// Sets torch's intra-op thread count for a scope and restores it however the scope ends.
struct ThreadCount {
  explicit ThreadCount(int n) : before(at::get_num_threads()) { at::set_num_threads(n); }
  ~ThreadCount() { at::set_num_threads(before); }
  int before;
};

bool bitwise_equal(const TensorList& a, const TensorList& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (a[i].sizes() != b[i].sizes() || !at::equal(a[i], b[i])) return false;
  }
  return true;
}

}  // namespace

TEST_CASE("phnn-paper: the fused update splits into pieces bitwise alike on 1 and 2 threads, equal to the tensor path") {
  // Two problems of tensors larger than one work piece (8,192 coordinates), so that every segment is cut and the
  // state's norm is summed over several pieces.
  for (const auto dtype : {at::kDouble, at::kFloat}) {
    for (const bool preprocess : {false, true}) {
      PhnnPaperOptions o;
      o.preprocess = preprocess;
      o.out_mul = 0.1;
      test::FusedAndTensor<PhnnPaper> f(o, dtype, /*seed=*/9, /*last_dim=*/20000);
      const TensorList params = {f.params[1], at::randn({2, 3, 7001}, f.gen, f.opts)};
      TensorList g;
      for (const auto& p : params) g.push_back(0.1 * p + 0.01 * at::randn(p.sizes(), f.gen, f.opts));
      optim::OptimizerState state = f.tensor.init(params);
      for (auto& s : state.slots.at("s")) s = at::randn(s.sizes(), f.gen, f.opts);
      INFO("dtype=" << dtype << " preprocess=" << preprocess);
      at::NoGradGuard no_grad;
      REQUIRE(f.fused.uses_fused_update(params, g, state.slots.at("s")));
      optim::StepResult one, two;
      {
        ThreadCount threads(1);
        one = f.fused.update(params, g, at::Tensor(), state);
      }
      {
        ThreadCount threads(2);
        two = f.fused.update(params, g, at::Tensor(), state);
      }
      CHECK(bitwise_equal(one.params, two.params));
      CHECK(bitwise_equal(one.state.slots.at("s"), two.state.slots.at("s")));
      const auto ref = f.tensor.update(params, g, at::Tensor(), state);
      double worst = 0;
      for (std::size_t i = 0; i < params.size(); ++i) {
        worst = std::max(worst, test::max_rel_diff(one.params[i], ref.params[i]));
        worst = std::max(worst, test::max_rel_diff(one.state.slots.at("s")[i], ref.state.slots.at("s")[i]));
      }
      CHECK(worst < (dtype == at::kDouble ? 1e-12 : 5e-6));
    }
  }
}

TEST_CASE("phnn-paper: nominal flops per coordinate") {
  PhnnPaperOptions o;
  CHECK(PhnnPaper(o).flops_per_coordinate() == 34.0);  // d = 1 with norm
  o.preprocess = true;
  o.norm = false;
  CHECK(PhnnPaper(o).flops_per_coordinate() == 6 + 32 + 32 + 14 + 18);
}
