#include <ATen/Parallel.h>
#include <ATen/core/grad_mode.h>
#include <torch/csrc/autograd/autograd.h>

#include <cmath>
#include <string>
#include <vector>

#include "hamlet/core/seed.hpp"
#include "hamlet/learned/phnn.hpp"
#include "hamlet/learned/phnn_kernel.hpp"
#include "learned_fixtures.hpp"
#include "support/catch.hpp"
#include "support/test_support.hpp"

using namespace hamlet;
using namespace hamlet::learned;

namespace {

at::Tensor T(const std::vector<double>& values, std::vector<int64_t> shape) {
  return at::tensor(values, at::kDouble).reshape(shape);
}

// Three evaluation updates (no grad) of a fused and a tensor-path phnn with the same weights; the largest relative
// difference over parameters, every state slot and every diagnostic.
double fused_vs_tensor(const PhnnOptions& o, at::ScalarType dtype) {
  test::FusedAndTensor<Phnn> f(o, dtype, /*seed=*/21, /*last_dim=*/5);
  Phnn &fused = f.fused, &tensor = f.tensor;
  optim::OptimizerState sf = fused.init(f.params), st = tensor.init(f.params);
  TensorList pf = f.params, pt = f.params;
  double worst = 0;
  at::NoGradGuard no_grad;
  for (int step = 0; step < 3; ++step) {
    TensorList g;
    for (const auto& p : pf) g.push_back(2 * p + 0.1 * at::randn(p.sizes(), f.gen, f.opts));
    const at::Tensor q = fused.features(to_rows(g)), p = to_rows(sf.slots.at("p"), o.dim());
    CHECK(fused.uses_fused_kernel(q, p));
    CHECK_FALSE(tensor.uses_fused_kernel(q, p));
    // Evaluation runs the whole update from the tensors (ph::fused_update; with lopt-features
    // ph::fused_features_update).
    CHECK(fused.uses_fused_update(pf, g, sf));
    CHECK_FALSE(tensor.uses_fused_update(pf, g, sf));
    const auto rf = fused.update(pf, g, at::Tensor(), sf), rt = tensor.update(pt, g, at::Tensor(), st);
    for (std::size_t i = 0; i < rf.params.size(); ++i) worst = std::max(worst, test::max_rel_diff(rf.params[i], rt.params[i]));
    REQUIRE(rf.state.slots.size() == rt.state.slots.size());
    for (const auto& [name, slot] : rt.state.slots) {
      for (std::size_t i = 0; i < slot.size(); ++i) worst = std::max(worst, test::max_rel_diff(rf.state.slots.at(name)[i], slot[i]));
    }
    REQUIRE(rf.diagnostics.size() == rt.diagnostics.size());
    for (const auto& [name, value] : rt.diagnostics) worst = std::max(worst, test::max_rel_diff(rf.diagnostics.at(name), value));
    // Both continue from the tensor path's point, so the comparison is per step, not of diverging trajectories.
    pf = pt = rt.params;
    sf = st = rt.state;
  }
  return worst;
}

// The fused evaluation updates equal the tensor expressions: to 1e-12 in float64, to float32 rounding
// (`float_tolerance`) in float32.
void check_fused_equals_tensor(const PhnnOptions& o, double float_tolerance) {
  CHECK(fused_vs_tensor(o, at::kDouble) < 1e-12);
  CHECK(fused_vs_tensor(o, at::kFloat) < float_tolerance);
}

// phnn on P(g) (d = 2) with a constant mass, state dissipation, K = 1: the experiments' setting (the MNIST protocol).
PhnnOptions experiments_setting() {
  PhnnOptions o;
  o.preprocess = true;
  o.mass = "constant";
  return o;
}

}  // namespace

TEST_CASE("phnn kernel: one substep of a 1-D system with hand-computed values") {
  // V(q) = tanh(q) (V1 = 1, b = 0, v2 = 1, b_V2 = 0.25), G = 0.3 (G2 = 0, bias 0.3), D = δ I, M⁻¹ = m.
  const double q0 = 0.4, p0 = -0.7, h = 0.1, delta = 0.2, m = 1.5, g0 = 0.3;
  ph::KernelWeights k;
  k.v1 = T({1.0}, {1, 1});
  k.v1_bias = T({0.0}, {1});
  k.v2 = T({1.0}, {1, 1});
  k.v2_bias = T({0.25}, {1});
  k.g1 = T({0.8}, {1, 1});
  k.g1_bias = T({-0.1}, {1});
  k.g2 = T({0.0}, {1, 1});
  k.g2_bias = T({g0}, {1});
  k.dissipation = T({delta, 0, 0, delta}, {2, 2});
  k.inv_mass = T({m}, {1, 1});
  const ph::KernelStep s = ph::fused_step(k, T({q0}, {1, 1}), T({p0}, {1, 1}), h, 1);

  const double a = 1 - std::tanh(q0) * std::tanh(q0), b = m * p0;
  const double p1 = p0 + h * (-a - delta * b + g0);
  const double q_dot = m * p1 - delta * a, q1 = q0 + h * q_dot;
  CHECK(s.p_next.item<double>() == Approx(p1).epsilon(1e-14));
  CHECK(s.q_dot.item<double>() == Approx(q_dot).epsilon(1e-14));
  CHECK(s.q_hat.item<double>() == Approx(q1).epsilon(1e-14));
  CHECK(s.energy_before.item<double>() == Approx(std::tanh(q0) + 0.25 + 0.5 * m * p0 * p0).epsilon(1e-14));
  CHECK(s.energy_after.item<double>() == Approx(std::tanh(q1) + 0.25 + 0.5 * m * p1 * p1).epsilon(1e-14));
  CHECK(s.dissipated_power.item<double>() == Approx(delta * (a * a + b * b)).epsilon(1e-14));
  CHECK(s.supplied_power.item<double>() == Approx(b * g0).epsilon(1e-14));
}

TEST_CASE("phnn kernel: its float32 tanh (a vectorised exp) is within 2.4e-7 of tanh, saturates, keeps NaN") {
  // V(q) = tanh(q), p = 0: the energy before the flow is tanh(q) row by row.
  std::vector<double> qs;
  for (int i = -20000; i <= 20000; ++i) qs.push_back(i * 5e-4);  // [-10, 10]
  for (double x : {1e-30, 1e-7, 50.0, 100.0, 1e30}) {
    qs.push_back(x);
    qs.push_back(-x);
  }
  const auto rows = static_cast<int64_t>(qs.size());
  ph::KernelWeights k;
  const auto f32 = at::TensorOptions().dtype(at::kFloat);
  k.v1 = at::ones({1, 1}, f32);
  k.v1_bias = at::zeros({1}, f32);
  k.v2 = at::ones({1, 1}, f32);
  k.v2_bias = at::zeros({1}, f32);
  k.g1 = at::zeros({1, 1}, f32);
  k.g1_bias = at::zeros({1}, f32);
  k.g2 = at::zeros({1, 1}, f32);
  k.g2_bias = at::zeros({1}, f32);
  k.dissipation = at::zeros({2, 2}, f32);
  k.inv_mass = at::ones({1, 1}, f32);
  const at::Tensor q = at::tensor(qs, at::kDouble).to(at::kFloat).reshape({rows, 1});
  const at::Tensor e = ph::fused_step(k, q, at::zeros_like(q), 0.1, 1).energy_before.to(at::kDouble);
  const at::Tensor q64 = q.to(at::kDouble).reshape({rows});
  double worst = 0;
  for (int64_t r = 0; r < rows; ++r) {
    worst = std::max(worst, std::fabs(e[r].item<double>() - std::tanh(q64[r].item<double>())));
  }
  CHECK(worst <= 2.4e-7);
  const at::Tensor special = at::tensor({std::nan(""), INFINITY, -INFINITY}, at::kFloat).reshape({3, 1});
  const at::Tensor es = ph::fused_step(k, special, at::zeros_like(special), 0.1, 1).energy_before;
  CHECK(std::isnan(es[0].item<float>()));
  CHECK(es[1].item<float>() == 1.0f);
  CHECK(es[2].item<float>() == -1.0f);
}

TEST_CASE("phnn kernel: evaluation updates equal the tensor expressions (float64 1e-12, float32 rounding)") {
  SECTION("phnn on P(g) (d = 2), state dissipation, K = 1: the experiments' setting") {
    check_fused_equals_tensor(experiments_setting(), 5e-6);
  }
  SECTION("state mass (the phnn default) on P(g) and on the raw gradient, K = 2") {
    for (const bool preprocess : {true, false}) {
      PhnnOptions o;
      o.preprocess = preprocess;
      o.substeps = 2;
      check_fused_equals_tensor(o, 2e-5);  // the state mass amplifies float32 rounding more
    }
  }
  SECTION("phnn-features with a state mass") {
    PhnnOptions o = phnn_features_defaults();
    o.mass = "state";
    check_fused_equals_tensor(o, 2e-5);  // the state mass amplifies float32 rounding more
  }
  SECTION("raw gradient (d = 1), constant dissipation with softplus diagonal, K = 3") {
    PhnnOptions o;
    o.mass = "constant";
    o.dissipation = "constant";
    o.d_softplus = true;
    o.substeps = 3;
    o.h = 0.05;
    check_fused_equals_tensor(o, 5e-6);
  }
  SECTION("exp readout on P(g), constant mass") {
    PhnnOptions o = experiments_setting();
    o.readout = "exp";
    o.exp_mult = 0.5;
    check_fused_equals_tensor(o, 5e-6);
  }
  SECTION("phnn-features: D and G read the mlp-lopt context, exp readout, state dissipation with softplus") {
    PhnnOptions o = phnn_features_defaults();
    o.d_softplus = true;
    o.substeps = 2;
    check_fused_equals_tensor(o, 5e-6);
  }
}

TEST_CASE("phnn kernel: used only where it applies, bad shapes are errors") {
  const at::Tensor q = at::zeros({3, 2}), p = at::zeros({3, 2});
  PhnnOptions o = experiments_setting();
  Phnn opt(o);
  CHECK(opt.uses_fused_kernel(q, p));
  CHECK_FALSE(opt.uses_fused_kernel(q.to(at::kHalf), p.to(at::kHalf)));
  // What will be differentiated (meta-training, also a --recompute forward run without grad mode) runs through the
  // kernel's autograd node in this configuration (K = 1, constant mass, state dissipation) ...
  CHECK(opt.uses_fused_kernel(q.clone().requires_grad_(true), p));
  CHECK(opt.uses_fused_kernel(q, p.clone().requires_grad_(true)));
  opt.set_trainable(true);
  CHECK(opt.uses_fused_kernel(q, p));
  // ... and keeps the tensor path in every other one.
  PhnnOptions two = o;
  two.substeps = 2;
  Phnn opt2(two);
  CHECK(opt2.uses_fused_kernel(q, p));
  opt2.set_trainable(true);
  CHECK_FALSE(opt2.uses_fused_kernel(q, p));
  // The node covers the state mass too (issue 33), but not a constant dissipation.
  o.mass = "state";
  CHECK(Phnn(o).uses_fused_kernel(q, p));
  Phnn state_mass(o);
  state_mass.set_trainable(true);
  CHECK(state_mass.uses_fused_kernel(q, p));
  PhnnOptions constant_d = o;
  constant_d.dissipation = "constant";
  Phnn opt3(constant_d);
  CHECK(opt3.uses_fused_kernel(q, p));
  opt3.set_trainable(true);
  CHECK_FALSE(opt3.uses_fused_kernel(q, p));
  o.derivatives = "autograd";
  CHECK_FALSE(Phnn(o).uses_fused_kernel(q, p));
  o.derivatives = "closed-form";
  o.kernel = "tensor";
  CHECK_FALSE(Phnn(o).uses_fused_kernel(q, p));
  o.kernel = "loop";
  CHECK_THROWS_WITH(o.validate(), Catch::Contains("phnn.kernel must be fused or tensor, got 'loop'"));

  ph::KernelWeights k;
  k.v1 = at::zeros({4, 1});
  k.v1_bias = at::zeros({4});
  k.v2 = at::zeros({1, 4});
  k.v2_bias = at::zeros({1});
  k.g1 = at::zeros({4, 1});
  k.g1_bias = at::zeros({5, 4});  // per-row bias for 5 rows, but 3 rows come
  k.g2 = at::zeros({1, 4});
  k.g2_bias = at::zeros({1});
  k.dissipation = at::eye(2);
  k.inv_mass = at::eye(1);
  CHECK_THROWS_WITH(ph::fused_step(k, at::zeros({3, 1}), at::zeros({3, 1}), 0.1, 1),
                    Catch::Contains("the G bias must be [4] or [3, 4]"));
  CHECK_THROWS_WITH(ph::fused_step(k, at::zeros({3, 2}), at::zeros({3, 2}), 0.1, 1),
                    Catch::Contains("V weights do not fit d = 2"));
}

namespace {

// Meta-gradients of three updates: the loss Σ θ² + Σ p² after every step, differentiated with respect to every
// weight and (second_order) the gradients fed to the optimizer. The fused optimizer runs the kernel's autograd
// node, the tensor one autograd through the tensor expressions (the reference). Largest relative difference.
double meta_gradients_fused_vs_tensor(const PhnnOptions& o, at::ScalarType dtype, bool second_order = false) {
  test::FusedAndTensor<Phnn> f(o, dtype, /*seed=*/33, /*last_dim=*/5);
  const TensorList &w0 = f.weights, &params = f.params;
  const at::TensorOptions& opts = f.opts;
  std::vector<TensorList> fields;
  for (int step = 0; step < 3; ++step) {
    TensorList g;
    for (const auto& p : params) g.push_back(at::randn(p.sizes(), f.gen, opts));
    fields.push_back(g);
  }
  const auto run = [&](Phnn& opt) {
    TensorList w;
    for (const auto& x : w0) w.push_back(x.clone().requires_grad_(true));
    opt.set_weights(w);
    TensorList inputs = w;
    optim::OptimizerState state = opt.init(params);
    TensorList theta = params;
    at::Tensor loss = at::zeros({}, opts);
    for (int step = 0; step < 3; ++step) {
      TensorList g;
      for (std::size_t i = 0; i < theta.size(); ++i) {
        at::Tensor gi = fields[step][i] + 0.5 * theta[i].detach();
        if (second_order) {
          gi = gi.requires_grad_(true);
          inputs.push_back(gi);
        }
        g.push_back(gi);
      }
      CHECK(opt.uses_fused_kernel(opt.features(to_rows(g)), to_rows(state.slots.at("p"), o.dim())) ==
            (opt.settings().kernel == "fused"));
      const optim::StepResult r = opt.update(theta, g, at::Tensor(), state);
      theta = r.params;
      state = r.state;
      for (const auto& x : theta) loss = loss + (x * x).sum();
      for (const auto& x : state.slots.at("p")) loss = loss + (x * x).sum();
    }
    return std::pair<at::Tensor, TensorList>{loss, inputs};
  };
  const auto [loss_f, in_f] = run(f.fused);
  const auto [loss_t, in_t] = run(f.tensor);
  double worst = test::max_rel_diff(loss_f, loss_t);
  const auto gf = torch::autograd::grad({loss_f}, in_f, {}, false, false, true);
  const auto gt = torch::autograd::grad({loss_t}, in_t, {}, false, false, true);
  for (std::size_t i = 0; i < gf.size(); ++i) {
    INFO("input " << i << " (weights first: " << f.fused.weight_names().size() << ")");
    if (!gt[i].defined()) {
      CHECK((!gf[i].defined() || gf[i].abs().max().item<double>() == 0));
      continue;
    }
    REQUIRE(gf[i].defined());
    worst = std::max(worst, test::max_rel_diff(gf[i], gt[i]));
  }
  return worst;
}

}  // namespace

TEST_CASE("phnn kernel: meta-gradients through its autograd node equal autograd through the tensor expressions") {
  SECTION("phnn on P(g), constant mass, state dissipation (the MNIST protocol): float64 1e-12, float32 rounding") {
    CHECK(meta_gradients_fused_vs_tensor(experiments_setting(), at::kDouble) < 1e-12);
    CHECK(meta_gradients_fused_vs_tensor(experiments_setting(), at::kFloat) < 1e-4);
  }
  SECTION("raw gradient (d = 1), softplus diagonal of L_D, and cotangents of the gradients (second order)") {
    PhnnOptions o;
    o.mass = "constant";
    o.d_softplus = true;
    CHECK(meta_gradients_fused_vs_tensor(o, at::kDouble, /*second_order=*/true) < 1e-12);
  }
  SECTION("phnn-features: per-row first-layer biases of D and G from the context, exp readout") {
    CHECK(meta_gradients_fused_vs_tensor(phnn_features_defaults(), at::kDouble) < 1e-12);
  }
  SECTION("state mass (the phnn default), raw gradient (d = 1), cotangents of the gradients (second order)") {
    const PhnnOptions o;
    REQUIRE(o.mass == "state");
    CHECK(meta_gradients_fused_vs_tensor(o, at::kDouble, /*second_order=*/true) < 1e-12);
    CHECK(meta_gradients_fused_vs_tensor(o, at::kFloat) < 1e-4);
  }
  SECTION("state mass on P(g) (d = 2), softplus diagonal of L_D") {
    PhnnOptions o;
    o.preprocess = true;
    o.d_softplus = true;
    CHECK(meta_gradients_fused_vs_tensor(o, at::kDouble, /*second_order=*/true) < 1e-12);
    CHECK(meta_gradients_fused_vs_tensor(o, at::kFloat) < 1e-4);
  }
}

namespace {

// One substep of the node (fused_step_trainable) against autograd through Phnn's tensor expressions
// (ph::symplectic_euler on Phnn::model, closed-form derivatives) on 70 rows (a block and a part): the values of q̇,
// p' and q̂, and the cotangents of q, p and every weight tensor for random cotangents of q̇ and p'. Largest
// relative difference.
double node_vs_tensor(const PhnnOptions& o, at::ScalarType dtype) {
  test::FusedAndTensor<Phnn> f(o, dtype, /*seed=*/41, /*last_dim=*/5);
  const std::vector<std::string> names = f.tensor.weight_names();
  TensorList w;
  for (const auto& x : f.weights) w.push_back(x.clone().requires_grad_(true));
  f.tensor.set_weights(w);
  const auto weight = [&](const std::string& name) {
    for (std::size_t i = 0; i < names.size(); ++i) {
      if (names[i] == name) return w[i];
    }
    FAIL("no weight " << name);
    return at::Tensor();
  };
  const int64_t d = o.dim(), rows = 70;
  ph::KernelWeights kw;
  kw.v1 = weight("V.0.weight");
  kw.v1_bias = weight("V.0.bias");
  kw.v2 = weight("V.2.weight");
  kw.v2_bias = weight("V.2.bias");
  kw.g1 = weight("G.0.weight");
  kw.g1_bias = weight("G.0.bias");
  kw.g2 = weight("G.2.weight");
  kw.g2_bias = weight("G.2.bias");
  kw.d1 = weight("D.0.weight");
  kw.d1_bias = weight("D.0.bias");
  kw.d2 = weight("D.2.weight");
  kw.d2_bias = weight("D.2.bias");
  kw.m1 = weight("M.0.weight");
  kw.m1_bias = weight("M.0.bias");
  kw.m2 = weight("M.2.weight");
  kw.m2_bias = weight("M.2.bias");
  kw.d_softplus = o.d_softplus;
  kw.eps_d = o.eps_d;
  kw.eps_m = o.eps_m;
  REQUIRE(ph::trainable_step_applies(kw, 1));
  const at::Tensor q = at::randn({rows, d}, f.gen, f.opts).requires_grad_(true);
  const at::Tensor p = (0.7 * at::randn({rows, d}, f.gen, f.opts)).requires_grad_(true);
  const at::Tensor q_dot_bar = at::randn({rows, d}, f.gen, f.opts), p_next_bar = at::randn({rows, d}, f.gen, f.opts);
  const ph::KernelStep k = ph::fused_step_trainable(kw, q, p, o.h, 1);
  const ph::Step t = ph::symplectic_euler(f.tensor.model(f.opts), q, p, o.h, 1, /*create_graph=*/true);
  double worst = std::max({test::max_rel_diff(k.q_dot, t.q_dot), test::max_rel_diff(k.p_next, t.p_next),
                           test::max_rel_diff(k.q_hat, t.q_hat)});
  TensorList inputs = {q, p};
  inputs.insert(inputs.end(), w.begin(), w.end());
  const auto gk = torch::autograd::grad({(k.q_dot * q_dot_bar).sum() + (k.p_next * p_next_bar).sum()}, inputs, {},
                                        false, false, true);
  const auto gt = torch::autograd::grad({(t.q_dot * q_dot_bar).sum() + (t.p_next * p_next_bar).sum()}, inputs, {},
                                        false, false, true);
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    INFO("input " << i << (i < 2 ? (i == 0 ? " (q)" : " (p)") : " (" + names[i - 2] + ")"));
    if (!gt[i].defined()) {  // V.2.bias and W_u: no step output depends on them
      CHECK((!gk[i].defined() || gk[i].abs().max().item<double>() == 0));
      continue;
    }
    REQUIRE(gk[i].defined());
    worst = std::max(worst, test::max_rel_diff(gk[i], gt[i]));
  }
  return worst;
}

}  // namespace

TEST_CASE("phnn kernel: the autograd node with a state mass equals autograd through the tensor expressions") {
  SECTION("d = 1 (raw gradient), state dissipation") {
    const PhnnOptions o;
    CHECK(node_vs_tensor(o, at::kDouble) < 1e-12);
    CHECK(node_vs_tensor(o, at::kFloat) < 5e-4);  // float32 rounding, amplified by the state mass's second derivatives
  }
  SECTION("d = 2 (P(g)), state dissipation") {
    PhnnOptions o;
    o.preprocess = true;
    CHECK(node_vs_tensor(o, at::kDouble) < 1e-12);
    CHECK(node_vs_tensor(o, at::kFloat) < 5e-4);  // float32 rounding, amplified by the state mass's second derivatives
  }
  SECTION("d = 2, softplus diagonal of L_D, larger step") {
    PhnnOptions o;
    o.preprocess = true;
    o.d_softplus = true;
    o.h = 0.3;
    CHECK(node_vs_tensor(o, at::kDouble) < 1e-12);
  }
}

// The float32 math of the fused loops (private header of src/learned), against double-precision references.
#include "../../src/learned/kernel_math.hpp"

TEST_CASE("kernel math: float32 log and softplus without calls are within a few ulp of the double references") {
  double worst_log = 0, worst_softplus = 0;
  for (int i = 0; i <= 200000; ++i) {
    const float x = static_cast<float>(-40.0 + i * 4e-4);  // [-40, 40]
    const double ref = x > 20.0f ? static_cast<double>(x) : std::log1p(std::exp(static_cast<double>(x)));
    const double got = learned::kernel::softplus_of(x);
    worst_softplus = std::max(worst_softplus, std::fabs(got - ref) / ref);
    const float u = 1.0f + static_cast<float>(i) * 1e-4f;  // [1, 21]
    worst_log = std::max(worst_log, std::fabs(learned::kernel::log_vectorisable(u) - std::log(static_cast<double>(u))));
  }
  CHECK(worst_softplus < 5e-7);
  CHECK(worst_log < 2e-7);
  CHECK(learned::kernel::softplus_of(100.0f) == 100.0f);
  CHECK(std::isnan(learned::kernel::softplus_of(std::nanf(""))));
  CHECK(learned::kernel::softplus_of(-INFINITY) < 1e-37f);  // e^−87, where the exp clamps
  CHECK(learned::kernel::softplus_of(1e-30f) == Approx(std::log(2.0)).epsilon(1e-7));
}

namespace {

// Sets torch's intra-op thread count for a scope and restores it however the scope ends.
struct ThreadCount {
  explicit ThreadCount(int n) : before(at::get_num_threads()) { at::set_num_threads(n); }
  ~ThreadCount() { at::set_num_threads(before); }
  int before;
};

bool bitwise_equal(const at::Tensor& a, const at::Tensor& b) { return a.sizes() == b.sizes() && at::equal(a, b); }

}  // namespace

TEST_CASE("phnn kernel: the whole update splits into pieces bitwise alike on 1 and 2 threads, equal to the tensor path") {
  // Two problems of tensors larger than one work piece (8,192 coordinates), so that every segment is cut and the
  // diagnostics are summed over several pieces.
  PhnnOptions state_mass;  // the phnn default: state mass, d = 1
  PhnnOptions constant = experiments_setting();
  constant.preprocess = false;
  constant.mass = "constant";
  for (const auto dtype : {at::kDouble, at::kFloat}) {
    for (const PhnnOptions& o : {state_mass, constant, experiments_setting()}) {
      test::FusedAndTensor<Phnn> f(o, dtype, /*seed=*/13, /*last_dim=*/20000);
      const TensorList params = {f.params[1], at::randn({2, 3, 7001}, f.gen, f.opts)};
      TensorList g;
      for (const auto& p : params) g.push_back(2 * p + 0.1 * at::randn(p.sizes(), f.gen, f.opts));
      optim::OptimizerState state = f.tensor.init(params);
      for (auto& p : state.slots.at("p")) p = 0.3 * at::randn(p.sizes(), f.gen, f.opts);
      state.scalars["H_after_flow"] = at::randn({2}, f.gen, f.opts);
      INFO("dtype=" << dtype << " mass=" << o.mass << " preprocess=" << o.preprocess);
      at::NoGradGuard no_grad;
      REQUIRE(f.fused.uses_fused_update(params, g, state));
      optim::StepResult one, two;
      {
        ThreadCount threads(1);
        one = f.fused.update(params, g, at::Tensor(), state);
      }
      {
        ThreadCount threads(2);
        two = f.fused.update(params, g, at::Tensor(), state);
      }
      const auto ref = f.tensor.update(params, g, at::Tensor(), state);
      double worst = 0;
      for (std::size_t i = 0; i < params.size(); ++i) {
        CHECK(bitwise_equal(one.params[i], two.params[i]));
        CHECK(bitwise_equal(one.state.slots.at("p")[i], two.state.slots.at("p")[i]));
        worst = std::max(worst, test::max_rel_diff(one.params[i], ref.params[i]));
        worst = std::max(worst, test::max_rel_diff(one.state.slots.at("p")[i], ref.state.slots.at("p")[i]));
      }
      REQUIRE(one.diagnostics.size() == ref.diagnostics.size());
      for (const auto& [name, value] : ref.diagnostics) {
        INFO(name);
        CHECK(bitwise_equal(one.diagnostics.at(name), two.diagnostics.at(name)));
        // Sums over 54,000 coordinates: relative to their own size.
        const double scale = value.abs().max().item<double>();
        worst = std::max(worst, test::max_rel_diff(one.diagnostics.at(name) / (1 + scale), value / (1 + scale)));
      }
      CHECK(worst < (dtype == at::kDouble ? 1e-12 : (o.mass == "state" ? 2e-5 : 5e-6)));
    }
  }
}

TEST_CASE("phnn: nominal flops per coordinate") {
  PhnnOptions o;
  o.mass = "constant";
  CHECK(Phnn(o).flops_per_coordinate() == 523.0);  // d = 1, w = 16, K = 1, state dissipation
  o.mass = "state";
  CHECK(Phnn(o).flops_per_coordinate() == 893.0);
  o.substeps = 2;
  CHECK(Phnn(o).flops_per_coordinate() > 2 * 700.0);
}

namespace {

// phnn-features' whole update on B = 2 problems: factored tensors with d1 the first axis, the second and a tie,
// one of several chunks (28,000 coordinates per problem), a vector of several chunks, a short one and a per-problem
// scalar.
TensorList feature_params(at::Generator& gen, const at::TensorOptions& opts) {
  return {at::randn({2, 5, 7}, gen, opts),     at::randn({2, 9, 4}, gen, opts),  at::randn({2, 6, 6}, gen, opts),
          at::randn({2, 200, 140}, gen, opts), at::randn({2, 20000}, gen, opts), at::randn({2, 11}, gen, opts),
          at::randn({2}, gen, opts)};
}

// max |a − b| / max |b|.
double rel_to_max(const at::Tensor& a, const at::Tensor& b) {
  return test::max_abs_diff(a, b) / b.abs().max().to(at::kDouble).item<double>();
}

// phnn-features with out_mul = 1 and exp_mult = 0.1, so that the steps stand well above the parameters' rounding
// and the magnitude output matters.
PhnnOptions features_setting(PhnnOptions o = phnn_features_defaults()) {
  o.out_mul = 1.0;
  o.exp_mult = 0.1;
  return o;
}

struct Worst {
  double params = 0, steps = 0, slots = 0, diagnostics = 0;
};

// Four evaluation steps of the fused whole update and of the tensor path (the reference), each from the tensor
// path's point: the largest relative difference of θ', of the steps θ' − θ and of every state slot (p, m, v, fac;
// relative to the tensor's largest value), and of the diagnostics (relative to 1 + their size: sums over 56,000
// coordinates).
Worst features_update_vs_tensor(const PhnnOptions& o, at::ScalarType dtype) {
  test::FusedAndTensor<Phnn> f(o, dtype, /*seed=*/31, /*last_dim=*/5);
  TensorList params = feature_params(f.gen, f.opts);
  optim::OptimizerState state = f.tensor.init(params);
  at::NoGradGuard no_grad;
  Worst worst;
  for (int step = 0; step < 4; ++step) {
    TensorList g;
    for (const auto& p : params) g.push_back(2 * p + 0.1 * (step + 1) * at::randn(p.sizes(), f.gen, f.opts));
    REQUIRE(f.fused.uses_fused_update(params, g, state));
    REQUIRE_FALSE(f.tensor.uses_fused_update(params, g, state));
    const auto a = f.fused.update(params, g, at::Tensor(), state);
    const auto b = f.tensor.update(params, g, at::Tensor(), state);
    REQUIRE(a.state.step == b.state.step);
    for (std::size_t i = 0; i < params.size(); ++i) {
      REQUIRE(a.params[i].sizes() == params[i].sizes());
      REQUIRE(a.params[i].scalar_type() == dtype);
      worst.params = std::max(worst.params, test::max_rel_diff(a.params[i], b.params[i]));
      worst.steps = std::max(worst.steps, rel_to_max(a.params[i] - params[i], b.params[i] - params[i]));
    }
    REQUIRE(a.state.slots.size() == 4);
    REQUIRE(b.state.slots.size() == 4);
    for (const auto& [name, slot] : b.state.slots) {
      INFO("slot " << name);
      for (std::size_t i = 0; i < slot.size(); ++i) {
        const at::Tensor& x = a.state.slots.at(name)[i];
        REQUIRE(x.sizes() == slot[i].sizes());
        REQUIRE(x.scalar_type() == slot[i].scalar_type());
        worst.slots = std::max(worst.slots, rel_to_max(x, slot[i]));
      }
    }
    REQUIRE(a.diagnostics.size() == b.diagnostics.size());
    for (const auto& [name, value] : b.diagnostics) {
      const double scale = value.abs().max().item<double>();
      worst.diagnostics =
          std::max(worst.diagnostics, test::max_rel_diff(a.diagnostics.at(name) / (1 + scale), value / (1 + scale)));
    }
    REQUIRE(a.state.scalars.count("H_after_flow") == 1);
    params = b.params;
    state = b.state;
  }
  return worst;
}

}  // namespace

TEST_CASE("phnn kernel: phnn-features' whole update equals the tensor path over several steps (float64 1e-12, "
          "float32 rounding)") {
  PhnnOptions state_mass = features_setting();
  state_mass.mass = "state";
  state_mass.substeps = 2;
  PhnnOptions constant_d = features_setting();  // the context reaches G alone
  constant_d.dissipation = "constant";
  constant_d.d_softplus = true;
  for (const PhnnOptions& o : {features_setting(), state_mass, constant_d}) {
    for (const auto dtype : {at::kDouble, at::kFloat}) {
      INFO("dtype " << dtype << " mass " << o.mass << " dissipation " << o.dissipation);
      const Worst w = features_update_vs_tensor(o, dtype);
      INFO("worst: params " << w.params << ", steps " << w.steps << ", slots " << w.slots << ", diagnostics "
                            << w.diagnostics);
      if (dtype == at::kDouble) {
        CHECK(w.params < 1e-12);
        CHECK(w.steps < 1e-12);
        CHECK(w.slots < 1e-12);
        CHECK(w.diagnostics < 1e-12);
      } else {
        const double amplified = o.mass == "state" ? 8.0 : 1.0;  // the state mass amplifies float32 rounding more
        CHECK(w.params < 5e-6 * amplified);
        CHECK(w.steps < 5e-6 * amplified);
        CHECK(w.slots < 5e-6 * amplified);
        CHECK(w.diagnostics < 5e-6 * amplified);
      }
    }
  }
}

TEST_CASE("phnn kernel: phnn-features' whole update gives the same bits on 1 and 2 threads, and applies only where it can") {
  for (const auto dtype : {at::kDouble, at::kFloat}) {
    INFO("dtype " << dtype);
    test::FusedAndTensor<Phnn> f(features_setting(), dtype, /*seed=*/37, /*last_dim=*/5);
    const TensorList params = feature_params(f.gen, f.opts);
    TensorList g;
    for (const auto& p : params) g.push_back(2 * p + 0.1 * at::randn(p.sizes(), f.gen, f.opts));
    at::NoGradGuard no_grad;
    // From a state one step in, so that every accumulator and the momentum are non-zero.
    const optim::OptimizerState s1 = f.fused.update(params, g, at::Tensor(), f.fused.init(params)).state;
    REQUIRE(f.fused.uses_fused_update(params, g, s1));
    optim::StepResult one, two;
    {
      ThreadCount threads(1);
      one = f.fused.update(params, g, at::Tensor(), s1);
    }
    {
      ThreadCount threads(2);
      two = f.fused.update(params, g, at::Tensor(), s1);
    }
    for (std::size_t i = 0; i < params.size(); ++i) {
      CHECK(bitwise_equal(one.params[i], two.params[i]));
      for (const char* slot : {"p", "m", "v", "fac"}) CHECK(bitwise_equal(one.state.slots.at(slot)[i], two.state.slots.at(slot)[i]));
    }
    REQUIRE(one.diagnostics.size() == 5);
    for (const auto& [name, value] : one.diagnostics) CHECK(bitwise_equal(value, two.diagnostics.at(name)));
  }
  // A per-problem rank above 2 (mlp-lopt's feature passes take ≤ 2), the tensor kernel option, trainable weights or
  // a missing accumulator slot keep the rows.
  Phnn opt(features_setting());
  const TensorList cube = {at::randn({2, 3, 4, 5})}, vec = {at::randn({2, 7})};
  CHECK_FALSE(opt.uses_fused_update(cube, cube, opt.init(cube)));
  CHECK(opt.uses_fused_update(vec, vec, opt.init(vec)));
  optim::OptimizerState no_fac = opt.init(vec);
  no_fac.slots.erase("fac");
  CHECK_FALSE(opt.uses_fused_update(vec, vec, no_fac));
  PhnnOptions tensor = features_setting();
  tensor.kernel = "tensor";
  CHECK_FALSE(Phnn(tensor).uses_fused_update(vec, vec, opt.init(vec)));
  opt.set_trainable(true);
  CHECK_FALSE(opt.uses_fused_update(vec, vec, opt.init(vec)));
}

TEST_CASE("phnn-features: nominal flops per coordinate count the features and the context layer") {
  // 530 for the integrator and the exp readout, 87 for mlp-lopt's features, 2 · 28 · 32 for the context layer of
  // G's and D's 16 units each, 1 for q = g / rms(g).
  CHECK(Phnn(phnn_features_defaults()).flops_per_coordinate() == 2410.0);
  PhnnOptions constant_d = phnn_features_defaults();
  constant_d.dissipation = "constant";
  CHECK(Phnn(constant_d).flops_per_coordinate() < 2410.0 - 2 * 28 * 16);
}
