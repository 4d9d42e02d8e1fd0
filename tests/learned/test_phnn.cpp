#include <ATen/core/grad_mode.h>
#include <torch/csrc/autograd/autograd.h>

#include <cmath>

#include "hamlet/core/seed.hpp"
#include "hamlet/learned/mlp_lopt.hpp"
#include "hamlet/learned/phnn.hpp"
#include "hamlet/learned/registry.hpp"
#include "support/catch.hpp"
#include "support/test_support.hpp"

using namespace hamlet;
using namespace hamlet::learned;

namespace {

const auto kF64 = at::TensorOptions().dtype(at::kDouble);

at::Tensor T(const std::vector<double>& values, std::vector<int64_t> shape) {
  return at::tensor(values, at::kDouble).reshape(shape);
}

double scalar(const at::Tensor& x) { return x.item<double>(); }

// A model with a shared (q-independent) inverse mass and dissipation; `force` = 0 means no forcing.
ph::Model constant_model(std::function<at::Tensor(const at::Tensor&)> potential, double inv_mass,
                         at::Tensor dissipation, std::function<at::Tensor(const at::Tensor&)> forcing = {}) {
  ph::Model m;
  m.potential = std::move(potential);
  const at::Tensor minv = T({inv_mass}, {1, 1});
  m.inv_mass = [minv](const at::Tensor&) { return minv; };
  m.mass_depends_on_q = false;
  m.dissipation = [dissipation](const at::Tensor&) { return dissipation; };
  m.forcing = std::move(forcing);
  return m;
}

at::Tensor quadratic_potential(const at::Tensor& q) { return (1.5 * q * q).sum(-1); }

// det ∂(q', p')/∂(q, p) of one step at (q, p) (d = 1).
double step_jacobian_det(const ph::Model& model, double q0, double p0, double h) {
  const at::Tensor q = T({q0}, {1, 1}).requires_grad_(true), p = T({p0}, {1, 1}).requires_grad_(true);
  const ph::Step s = ph::symplectic_euler(model, q, p, h, 1, /*create_graph=*/true);
  const TensorList dq = torch::autograd::grad({s.q_hat.sum()}, {q, p}, {}, true);
  const TensorList dp = torch::autograd::grad({s.p_next.sum()}, {q, p});
  return scalar(dq[0]) * scalar(dp[1]) - scalar(dq[1]) * scalar(dp[0]);
}

PhnnOptions f64(bool preprocess, const std::string& mass = "state", const std::string& dissipation = "state") {
  PhnnOptions o;
  o.preprocess = preprocess;
  o.mass = mass;
  o.dissipation = dissipation;
  o.dtype = "float64";
  return o;
}

std::size_t index_of(const Phnn& opt, const std::string& name) {
  const auto names = opt.weight_names();
  return static_cast<std::size_t>(std::find(names.begin(), names.end(), name) - names.begin());
}

}  // namespace

TEST_CASE("phnn: Cholesky/PSD builders (docs/methods.md 2.8 items 4 and 5)") {
  SECTION("SymODEN PSD: no softplus, eps 0.1") {
    const at::Tensor raw = T({1, 2, 3}, {3});
    CHECK(test::max_abs_diff(ph::cholesky_from_raw(raw, 2, false), T({1, 0, 3, 2}, {2, 2})) == 0.0);
    const at::Tensor m = ph::psd_from_raw(raw, 2, false, 0.1);
    CHECK(test::max_abs_diff(m, T({1.1, 3.0, 3.0, 13.1}, {2, 2})) < 1e-12);
    CHECK(at::linalg_eigvalsh(m).min().item<double>() >= 0.1 - 1e-12);
  }
  SECTION("hamlet PSD: softplus diagonal, eps 1e-3") {
    const at::Tensor raw = T({0, 1, 0.5}, {3});
    CHECK(test::max_abs_diff(ph::cholesky_from_raw(raw, 2, true), T({0.6931471806, 0, 0.5, 1.3132616875}, {2, 2})) <
          1e-9);
    const at::Tensor m = ph::psd_from_raw(raw, 2, true, 1e-3);
    CHECK(test::max_abs_diff(m, T({0.4814530139, 0.3465735903, 0.3465735903, 1.9756562599}, {2, 2})) < 1e-9);
    CHECK(test::max_abs_diff(at::linalg_eigvalsh(m), T({0.4049806642, 2.0521286096}, {2})) < 1e-9);
  }
  SECTION("layout for n = 3 and batched raw entries") {
    // Diagonal first, then (1,0), (2,0), (2,1).
    const at::Tensor raw = T({1, 2, 3, 4, 5, 6, 10, 20, 30, 40, 50, 60}, {2, 6});
    const at::Tensor l = ph::cholesky_from_raw(raw, 3, false);
    CHECK(l.sizes() == at::IntArrayRef({2, 3, 3}));
    CHECK(test::max_abs_diff(l[0], T({1, 0, 0, 4, 2, 0, 5, 6, 3}, {3, 3})) == 0.0);
    CHECK(test::max_abs_diff(l[1], T({10, 0, 0, 40, 20, 0, 50, 60, 30}, {3, 3})) == 0.0);
    CHECK_THROWS_WITH(ph::cholesky_from_raw(raw, 2, false), Catch::Contains("needs 3 raw entries"));
  }
}

TEST_CASE("phnn: port-Hamiltonian vector field (docs/methods.md 2.8 items 1 and 2)") {
  // H = 1.5 p² + 5 (1 − cos q) at (π/2, 1): ∇H = (5, 3); D = diag(0, 0.3).
  const at::Tensor a = T({5}, {1, 1}), b = T({3}, {1, 1}), d = T({0, 0, 0, 0.3}, {2, 2});
  const auto rate = [&](const ph::Field& f) { return scalar(a * f.q_dot + b * f.p_dot); };
  const ph::Field f = ph::vector_field(a, b, d, at::Tensor());
  CHECK(std::abs(scalar(f.q_dot) - 3) < 1e-12);
  CHECK(std::abs(scalar(f.p_dot) + 5.9) < 1e-12);
  CHECK(std::abs(rate(f) + 2.7) < 1e-12);
  const ph::Field g = ph::vector_field(a, b, d, T({2}, {1, 1}));
  CHECK(std::abs(scalar(g.q_dot) - 3) < 1e-12);
  CHECK(std::abs(scalar(g.p_dot) + 3.9) < 1e-12);
  CHECK(std::abs(rate(g) - 3.3) < 1e-12);
  // The same with gradients from the energy itself (autograd of V, b = M⁻¹p).
  const ph::Model pendulum =
      constant_model([](const at::Tensor& q) { return (5.0 * (1.0 - q.cos())).sum(-1); }, 3.0, d);
  const ph::Gradients grads = ph::energy_gradients(pendulum, T({M_PI / 2}, {1, 1}), T({1}, {1, 1}), false);
  CHECK(std::abs(scalar(grads.a) - 5) < 1e-12);
  CHECK(std::abs(scalar(grads.b) - 3) < 1e-12);
}

TEST_CASE("phnn: semi-implicit Euler known answers (docs/methods.md 2.8 items 8, 9, 10)") {
  const ph::Model model = constant_model(quadratic_potential, 2.0, T({0.1, 0, 0, 0.2}, {2, 2}),
                                         [](const at::Tensor& q) { return at::full_like(q, 0.5); });
  const at::Tensor q = T({1.0}, {1, 1}), p = T({0.5}, {1, 1});
  SECTION("one step") {
    const ph::Step s = ph::symplectic_euler(model, q, p, 0.1, 1, false);
    CHECK(std::abs(scalar(s.p_next) - 0.23) < 1e-12);
    CHECK(std::abs(scalar(s.q_dot) - 0.16) < 1e-12);
    CHECK(std::abs(scalar(s.q_hat) - 1.016) < 1e-12);
    CHECK(std::abs(scalar(s.energy_before) - 1.75) < 1e-12);
    CHECK(std::abs(scalar(ph::hamiltonian(model, q, s.p_next)) - 1.5529) < 1e-12);
    CHECK(std::abs(scalar(ph::hamiltonian(model, s.q_hat, s.p_next)) - 1.601284) < 1e-12);
    CHECK(std::abs(scalar(s.dissipated_power) - 1.1) < 1e-12);  // (3, 1)·D·(3, 1)
    CHECK(std::abs(scalar(s.supplied_power) - 0.5) < 1e-12);    // b G = 1 · 0.5
    // Readout with W_u = (1, −1): u = 0.16 − 1 = −0.84; θ 2 → 1.99916 with out_mul 0.001.
    const at::Tensor u = at::linear(at::cat({s.q_dot, q}, -1), T({1, -1}, {1, 2})).squeeze(-1);
    CHECK(std::abs(scalar(u) + 0.84) < 1e-12);
    CHECK(std::abs(2.0 + 0.001 * scalar(u) - 1.99916) < 1e-12);
  }
  SECTION("two substeps of h/2") {
    const ph::Step s = ph::symplectic_euler(model, q, p, 0.05, 2, false);
    CHECK(std::abs(scalar(s.p_next) - 0.229475) < 1e-12);
    CHECK(std::abs(scalar(s.q_hat) - 1.029125) < 1e-12);
    CHECK(std::abs(scalar(s.q_dot) - 0.29125) < 1e-12);
  }
  SECTION("q-dependent mass M⁻¹(q) = 1 + q², V = 0: ∂H/∂q from the kinetic energy") {
    ph::Model m;
    m.potential = [](const at::Tensor& q) { return at::zeros({q.size(0)}, q.options()); };
    m.inv_mass = [](const at::Tensor& q) { return (1.0 + q * q).unsqueeze(-1); };
    m.mass_depends_on_q = true;
    m.dissipation = [](const at::Tensor&) { return at::zeros({2, 2}, kF64); };
    const at::Tensor q0 = T({0.5}, {1, 1}), p0 = T({1.0}, {1, 1});
    const ph::Gradients g = ph::energy_gradients(m, q0, p0, false);
    CHECK(std::abs(scalar(g.a) - 0.5) < 1e-12);
    CHECK(std::abs(scalar(g.b) - 1.25) < 1e-12);
    const ph::Step s = ph::symplectic_euler(m, q0, p0, 0.1, 1, false);
    CHECK(std::abs(scalar(s.p_next) - 0.95) < 1e-12);
    CHECK(std::abs(scalar(s.q_dot) - 1.1875) < 1e-12);
    CHECK(std::abs(scalar(s.q_hat) - 0.61875) < 1e-12);
  }
}

TEST_CASE("phnn: area preservation and contraction of one step (docs/methods.md 2.8 item 11)") {
  const at::Tensor zero_d = at::zeros({2, 2}, kF64);
  SECTION("D = 0, constant M: det = 1 for any V and any G(q)") {
    const ph::Model m = constant_model([](const at::Tensor& q) { return (1.5 * q * q + q.cos()).sum(-1); }, 2.0, zero_d,
                                       [](const at::Tensor& q) { return 0.5 * q.sin(); });
    CHECK(std::abs(step_jacobian_det(m, 0.7, -0.3, 0.1) - 1.0) < 1e-12);
  }
  SECTION("V = 1.5 q², D = diag(0, 0.2): det = 1 − h·0.2·2 = 0.96") {
    const ph::Model m = constant_model(quadratic_potential, 2.0, T({0, 0, 0, 0.2}, {2, 2}));
    CHECK(std::abs(step_jacobian_det(m, 0.7, -0.3, 0.1) - 0.96) < 1e-12);
  }
  SECTION("the optimizer's own nets with constant M and D = 0 preserve area") {
    PhnnOptions o = f64(false, "constant", "constant");
    o.eps_d = 0;
    o.seed = 4;
    Phnn opt(o);
    TensorList w = opt.weights();
    w[index_of(opt, "D.raw")] = at::zeros({3}, kF64);
    opt.set_weights(w);
    CHECK(std::abs(step_jacobian_det(opt.model(kF64), 0.7, -0.3, 0.1) - 1.0) < 1e-12);
    CHECK(std::abs(step_jacobian_det(opt.model(kF64), -1.3, 2.0, 0.1) - 1.0) < 1e-12);
  }
}

TEST_CASE("phnn: energy error of the integrator in ODE mode is first order and bounded (docs/methods.md 2.8 item 12)") {
  const ph::Model m =
      constant_model([](const at::Tensor& q) { return (0.5 * q * q).sum(-1); }, 1.0, at::zeros({2, 2}, kF64));
  const auto max_error = [&](double h, int64_t steps) {
    at::Tensor q = T({1.0}, {1, 1}), p = T({0.0}, {1, 1});
    double worst = 0;
    for (int64_t i = 0; i < steps; ++i) {
      const ph::Step s = ph::symplectic_euler(m, q, p, h, 1, false);
      q = s.q_hat;
      p = s.p_next;
      worst = std::max(worst, std::abs(scalar(ph::hamiltonian(m, q, p)) - 0.5));
    }
    return worst;
  };
  const double coarse = max_error(0.1, 1000), fine = max_error(0.01, 10000);
  CHECK(coarse == Approx(2.63157e-2).epsilon(1e-5));
  CHECK(fine == Approx(2.51256e-3).epsilon(1e-5));
  CHECK(coarse < 3e-2);
  CHECK(coarse / fine == Approx(10).epsilon(0.1));
}

TEST_CASE("phnn: structure for random weights (docs/methods.md 2.8 item 3)") {
  for (const bool preprocess : {false, true}) {
    INFO("preprocess " << preprocess);
    PhnnOptions o = f64(preprocess);
    o.eps_m = 0.05;
    o.eps_d = 0.02;
    o.seed = 9;
    const Phnn opt(o);
    const int64_t d = o.dim();
    const ph::Model m = opt.model(kF64);
    at::Generator gen = make_generator(21);
    const at::Tensor q = opt.features(2.0 * at::randn({64}, gen, kF64)), p = at::randn({64, d}, gen, kF64);
    const at::Tensor dm = m.dissipation(q), minv = m.inv_mass(q), g = m.forcing(q);
    CHECK(dm.sizes() == at::IntArrayRef({64, 2 * d, 2 * d}));
    CHECK(at::linalg_eigvalsh(dm).min().item<double>() >= o.eps_d - 1e-12);
    CHECK(at::linalg_eigvalsh(minv).min().item<double>() >= o.eps_m - 1e-12);
    CHECK(test::max_abs_diff(dm, dm.transpose(-1, -2)) == 0.0);

    // ∇H by plain autograd of H(q, p) agrees with energy_gradients (a with p held fixed, b = M⁻¹ p).
    const at::Tensor ql = q.detach().requires_grad_(true), pl = p.detach().requires_grad_(true);
    const TensorList grad_h = torch::autograd::grad({ph::hamiltonian(m, ql, pl).sum()}, {ql, pl});
    const ph::Gradients grads = ph::energy_gradients(m, q, p, false);
    CHECK(test::max_abs_diff(grads.a, grad_h[0]) < 1e-12);
    CHECK(test::max_abs_diff(grads.b, grad_h[1]) < 1e-12);

    const ph::Field f = ph::vector_field(grads.a, grads.b, dm, g);
    const at::Tensor x = at::cat({grads.a, grads.b}, -1);
    const at::Tensor dissipated = (x * ph::apply_rows(dm, x)).sum(-1);
    const at::Tensor supplied = (grads.b * g).sum(-1);
    const at::Tensor rate = (grad_h[0] * f.q_dot + grad_h[1] * f.p_dot).sum(-1);
    CHECK((-dissipated).max().item<double>() <= 0.0);
    CHECK(test::max_abs_diff(rate, supplied - dissipated) < 1e-10);
    CHECK((rate - supplied).max().item<double>() <= 1e-12);  // passivity: dH/dt ≤ bᵀG
  }
}

TEST_CASE("phnn: parameter counts, names, options and readout initialisation") {
  CHECK(Phnn(f64(false)).num_params() == 232);
  CHECK(Phnn(f64(true)).num_params() == 468);
  CHECK(Phnn(f64(false, "constant", "constant")).num_params() == 104);
  CHECK(Phnn(f64(true, "constant", "constant")).num_params() == 164);
  CHECK(Phnn(f64(false, "constant", "constant")).weight_names() ==
        std::vector<std::string>{"V.0.weight", "V.0.bias", "V.2.weight", "V.2.bias", "G.0.weight", "G.0.bias",
                                 "G.2.weight", "G.2.bias", "M.raw", "D.raw", "W_u.weight"});
  CHECK(Phnn(f64(true)).architecture() == "phnn d=2 hidden=16 mass=state dissipation=state d_softplus=false");
  CHECK_THROWS_WITH(PhnnOptions::from_map({{"mass", "heavy"}}), Catch::Contains("phnn.mass"));
  CHECK_THROWS_WITH(PhnnOptions::from_map({{"substeps", "0"}}), Catch::Contains("phnn.substeps"));

  SECTION("init_wu = sgd: u = −g (d = 1) and −sign g (d = 2)") {
    for (const bool preprocess : {false, true}) {
      PhnnOptions o = f64(preprocess);
      o.init_wu = "sgd";
      o.out_mul = 0.5;
      const Phnn opt(o);
      const TensorList params = {at::zeros({2, 3}, kF64)};
      const TensorList grads = {T({0.3, -2.0, 1e-3, -0.5, 4.0, 0.01}, {2, 3})};
      const auto r = opt.update(params, grads, at::Tensor(), opt.init(params));
      const at::Tensor want = preprocess ? -0.5 * grads[0].sign() : -0.5 * grads[0];
      CHECK(test::max_abs_diff(r.params[0], want) < 1e-15);
    }
  }
}

TEST_CASE("phnn: update() is the integrator plus readout, also in evaluation mode, with energy diagnostics") {
  PhnnOptions o = f64(true);
  o.seed = 2;
  o.substeps = 2;
  o.h = 0.2;
  o.out_mul = 0.01;
  Phnn opt(o);
  at::Generator gen = make_generator(3);
  const TensorList params = {at::randn({3, 2, 2}, gen, kF64), at::randn({3, 5}, gen, kF64)};
  const TensorList g0 = {at::randn({3, 2, 2}, gen, kF64), at::randn({3, 5}, gen, kF64)};
  const TensorList g1 = {at::randn({3, 2, 2}, gen, kF64), at::randn({3, 5}, gen, kF64)};
  const auto r0 = opt.update(params, g0, at::Tensor(), opt.init(params));
  const auto r1 = opt.update(r0.params, g1, at::Tensor(), r0.state);

  // The same step by hand from the free functions.
  const at::Tensor q = opt.features(to_rows(g1));
  const ph::Step s = ph::symplectic_euler(opt.model(kF64), q, to_rows(r0.state.slots.at("p"), 2), 0.2, 2, false);
  const at::Tensor u = at::linear(at::cat({s.q_dot, q}, -1), opt.weights().back()).squeeze(-1);
  CHECK(test::max_abs_diff(to_rows(r1.params), to_rows(r0.params) + 0.01 * u) < 1e-14);
  CHECK(test::max_abs_diff(to_rows(r1.state.slots.at("p"), 2), s.p_next) < 1e-14);
  CHECK(r1.state.slots.at("p")[0].sizes() == at::IntArrayRef({3, 2, 2, 2}));

  SECTION("diagnostics: [B] sums over coordinates; the reset change is logged one step late") {
    for (const char* key : {"H_before", "H_after_flow", "H_reset_change", "dissipated_power", "supplied_power"}) {
      INFO(key);
      CHECK(r1.diagnostics.at(key).sizes() == at::IntArrayRef({3}));
      CHECK_FALSE(r1.diagnostics.at(key).requires_grad());
    }
    CHECK(test::max_abs_diff(r1.diagnostics.at("H_before"), per_problem_row_sum(s.energy_before, params)) < 1e-12);
    const at::Tensor after = ph::hamiltonian(opt.model(kF64), s.q_hat, s.p_next);
    CHECK(test::max_abs_diff(r1.diagnostics.at("H_after_flow"), per_problem_row_sum(after, params)) < 1e-12);
    CHECK(test::max_abs_diff(r0.diagnostics.at("H_reset_change"), at::zeros({3}, kF64)) == 0.0);
    CHECK(test::max_abs_diff(r1.diagnostics.at("H_reset_change"),
                             r1.diagnostics.at("H_before") - r0.diagnostics.at("H_after_flow")) < 1e-12);
    CHECK((r1.diagnostics.at("dissipated_power") >= 0).all().item<bool>());
  }
  SECTION("under NoGradGuard with trainable weights: same values, no graph") {
    opt.set_trainable(true);
    const auto grad_mode = opt.update(r0.params, g1, at::Tensor(), r0.state);
    CHECK(grad_mode.params[0].requires_grad());
    optim::StepResult eval;
    {
      at::NoGradGuard no_grad;
      eval = opt.update(r0.params, g1, at::Tensor(), r0.state);
    }
    CHECK_FALSE(eval.params[0].requires_grad());
    CHECK_FALSE(eval.state.slots.at("p")[1].requires_grad());
    CHECK(test::max_abs_diff(eval.params[1], grad_mode.params[1]) < 1e-14);
    CHECK(test::max_abs_diff(eval.state.slots.at("p")[0], grad_mode.state.slots.at("p")[0]) < 1e-14);
  }
}

TEST_CASE("phnn: every weight but V's output bias receives meta-gradients through two updates") {
  // V's output bias only shifts H by a constant, so no dynamics depends on it: it is in the 2.7 count but can
  // never learn.
  PhnnOptions features = f64(false, "constant", "state");
  features.inputs = "lopt-features";
  features.readout = "exp";
  const std::vector<PhnnOptions> configs = {f64(false), f64(true), f64(true, "constant", "constant"), features};
  for (const auto& base : configs) {
    PhnnOptions o = base;
    o.seed = 1;
    Phnn opt(o);
    INFO(opt.architecture());
    opt.set_trainable(true);
    at::Generator gen = make_generator(8);
    const TensorList params = {at::randn({2, 3}, gen, kF64), at::randn({2, 2, 2}, gen, kF64)};
    const auto grads = [&] { return TensorList{at::randn({2, 3}, gen, kF64), at::randn({2, 2, 2}, gen, kF64)}; };
    const auto r1 = opt.update(params, grads(), at::Tensor(), opt.init(params));
    const auto r2 = opt.update(r1.params, grads(), at::Tensor(), r1.state);
    const at::Tensor loss = r2.params[0].pow(2).sum() + r2.params[1].pow(2).sum();
    const TensorList g = torch::autograd::grad({loss}, opt.weights(), {}, false, false, /*allow_unused=*/true);
    const auto names = opt.weight_names();
    for (std::size_t i = 0; i < g.size(); ++i) {
      INFO(names[i]);
      if (names[i] == "V.2.bias") {
        CHECK((!g[i].defined() || g[i].abs().max().item<double>() == 0.0));
      } else {
        REQUIRE(g[i].defined());
        CHECK(g[i].ne(0).all().item<bool>());
      }
    }
  }
}

TEST_CASE("phnn: closed-form derivatives have hand-computed values") {
  // V(x) = 3 tanh(2x + 0.5): ∂V/∂x = 3 · 2 · (1 − tanh²(2x + 0.5)).
  const at::Tensor x = T({0.0, 0.4}, {2, 1});
  const at::Tensor g = ph::tanh_mlp_input_grad(T({2}, {1, 1}), T({0.5}, {1}), T({3}, {1, 1}), T({1}, {1}), x);
  for (int i = 0; i < 2; ++i) {
    const double t = std::tanh(2 * scalar(x[i][0]) + 0.5);
    CHECK(scalar(g[i][0]) == Approx(6 * (1 - t * t)).epsilon(1e-14));
  }
  // n = 1: K = ½ softplus(r)² p², ∂K/∂r = softplus(r) p² σ(r); at r = 0, p = 2: 2 ln 2.
  CHECK(scalar(ph::kinetic_grad_raw(T({0.0}, {1, 1}), T({2.0}, {1, 1}), 1, true)[0][0]) ==
        Approx(2 * std::log(2.0)).epsilon(1e-14));
  // n = 2 without softplus: L = [[1, 0], [3, 2]] from raw (1, 2 | 3), p = (1, −1): y = Lᵀp = (−2, −2), ∂K/∂L_ij =
  // p_i y_j, so (∂L_00, ∂L_11 | ∂L_10) = (−2, 2 | 2).
  const at::Tensor r = ph::kinetic_grad_raw(T({1, 2, 3}, {1, 3}), T({1, -1}, {1, 2}), 2, false);
  CHECK(test::max_abs_diff(r, T({-2, 2, 2}, {1, 3})) < 1e-15);
}

TEST_CASE("phnn: closed-form and autograd derivatives give the same updates and meta-gradients (float64, 1e-12)") {
  // The autograd version is the reference: three updates with trainable weights, then the meta-gradient of a loss
  // of the final parameters, for both input modes and both mass/dissipation variants, K = 1 and K = 2.
  for (const bool preprocess : {false, true}) {
    for (const std::string mass : {"state", "constant"}) {
      for (const int64_t substeps : {1, 2}) {
        PhnnOptions o = f64(preprocess, mass, mass);
        o.seed = 4;
        o.substeps = substeps;
        o.out_mul = 0.05;
        PhnnOptions ref = o;
        ref.derivatives = "autograd";
        Phnn closed(o), autograd(ref);
        INFO(closed.architecture() << " substeps=" << substeps);
        closed.set_trainable(true);
        autograd.set_trainable(true);
        const auto run = [](const Phnn& opt, std::vector<TensorList>& states) {
          at::Generator gen = make_generator(11);
          TensorList params = {at::randn({2, 3}, gen, kF64), at::randn({2, 2, 2}, gen, kF64)};
          optim::OptimizerState state = opt.init(params);
          for (int t = 0; t < 3; ++t) {
            // Gradients of a quadratic in θ, so the trajectory carries φ-dependence into later features.
            const TensorList g = {2 * params[0] + 0.3, params[1] * 1.5 - 0.2};
            auto r = opt.update(params, g, at::Tensor(), state);
            params = r.params;
            state = r.state;
            states.push_back({params[0], params[1], state.slots.at("p")[0], r.diagnostics.at("H_before"),
                              r.diagnostics.at("dissipated_power")});
          }
          const at::Tensor loss = params[0].pow(2).sum() + params[1].pow(2).sum();
          return torch::autograd::grad({loss}, opt.weights(), {}, false, false, /*allow_unused=*/true);
        };
        std::vector<TensorList> sc, sa;
        const TensorList gc = run(closed, sc), ga = run(autograd, sa);
        for (std::size_t t = 0; t < sc.size(); ++t) {
          for (std::size_t k = 0; k < sc[t].size(); ++k) CHECK(test::max_abs_diff(sc[t][k], sa[t][k]) < 1e-12);
        }
        const auto names = closed.weight_names();
        double largest = 0;
        for (std::size_t i = 0; i < gc.size(); ++i) {
          INFO(names[i]);
          // An undefined meta-gradient (V's output bias) means zero.
          const at::Tensor c = gc[i].defined() ? gc[i] : at::zeros_like(closed.weights()[i]);
          const at::Tensor a = ga[i].defined() ? ga[i] : at::zeros_like(closed.weights()[i]);
          largest = std::max(largest, c.abs().max().item<double>());
          CHECK(test::max_abs_diff(c, a) < 1e-12);
        }
        CHECK(largest > 1e-3);  // the comparison is not between two zero vectors
      }
    }
  }
}

namespace {

PhnnOptions features_f64(const std::string& mass = "constant") {
  PhnnOptions o = phnn_features_defaults();
  o.mass = mass;
  o.dtype = "float64";
  return o;
}

}  // namespace

TEST_CASE("phnn-features: structure with the mlp-lopt context (docs/methods.md 2.8 items 3 and 4 for fixed z)") {
  for (const std::string mass : {"constant", "state"}) {
    INFO("mass " << mass);
    PhnnOptions o = features_f64(mass);
    o.eps_d = 0.02;
    o.seed = 4;
    const Phnn opt(o);
    CHECK(opt.name() == "phnn-features");
    CHECK(o.context_dim() == 39);
    at::Generator gen = make_generator(31);
    const at::Tensor q = at::randn({64, 1}, gen, kF64), p = at::randn({64, 1}, gen, kF64);
    const at::Tensor z1 = at::randn({64, 39}, gen, kF64), z2 = at::randn({64, 39}, gen, kF64);
    const ph::Model m1 = opt.model(kF64, z1), m2 = opt.model(kF64, z2);
    // The energy is a function of (q, p) alone: the context only enters D and G.
    CHECK(test::max_abs_diff(ph::hamiltonian(m1, q, p), ph::hamiltonian(m2, q, p)) == 0.0);
    CHECK(test::max_abs_diff(m1.dissipation(q), m2.dissipation(q)) > 1e-3);  // D reads z
    CHECK(test::max_abs_diff(m1.forcing(q), m2.forcing(q)) > 1e-3);          // G reads z
    const at::Tensor dm = m1.dissipation(q);
    CHECK(at::linalg_eigvalsh(dm).min().item<double>() >= o.eps_d - 1e-12);
    // Passivity for fixed z: dH/dt = −∇Hᵀ D ∇H + bᵀ G ≤ bᵀ G.
    const ph::Gradients grads = ph::energy_gradients(m1, q, p, false);
    const ph::Field f = ph::vector_field(grads.a, grads.b, dm, m1.forcing(q));
    const at::Tensor rate = (grads.a * f.q_dot + grads.b * f.p_dot).sum(-1);
    const at::Tensor supplied = (grads.b * m1.forcing(q)).sum(-1);
    CHECK((rate - supplied).max().item<double>() <= 1e-12);
    CHECK_THROWS_WITH(opt.model(kF64), Catch::Contains("context"));
  }
}

TEST_CASE("phnn-features: D and G are the tanh networks on [q | z], V's value and gradient come from one pass") {
  for (const std::string dissipation : {"state", "constant"}) {
    INFO("dissipation " << dissipation);
    PhnnOptions o = features_f64();
    o.dissipation = dissipation;
    o.eps_d = 0.01;
    o.seed = 9;
    const Phnn opt(o);
    at::Generator gen = make_generator(41);
    const at::Tensor q = at::randn({50, 1}, gen, kF64), z = at::randn({50, 39}, gen, kF64);
    // Reference: the networks written out on the concatenated input, from the named weights.
    const TensorList w = opt.weights();
    const auto names = opt.weight_names();
    const auto at_name = [&](const std::string& n) {
      for (std::size_t i = 0; i < names.size(); ++i) {
        if (names[i] == n) return w[i];
      }
      FAIL("no weight " << n);
      return at::Tensor();
    };
    const auto net = [&](const std::string& p, const at::Tensor& x) {
      return at::linear(at::tanh(at::linear(x, at_name(p + ".0.weight"), at_name(p + ".0.bias"))),
                        at_name(p + ".2.weight"), at_name(p + ".2.bias"));
    };
    const at::Tensor qz = at::cat({q, z}, 1);
    const ph::Model from_z = opt.model(kF64, z);
    // The split form update() uses: the 28 feature rows and one shared time row.
    const at::Tensor shared = z.narrow(1, 28, 11).narrow(0, 0, 1).expand({50, 11}).contiguous();
    const at::Tensor z_shared = at::cat({z.narrow(1, 0, 28), shared}, 1);
    const ph::Model from_parts = opt.model(kF64, z.narrow(1, 0, 28), shared.narrow(0, 0, 1));
    CHECK(test::max_abs_diff(from_z.forcing(q), net("G", qz)) < 1e-12);
    CHECK(test::max_abs_diff(from_parts.forcing(q), net("G", at::cat({q, z_shared}, 1))) < 1e-12);
    if (dissipation == "state") {
      const at::Tensor d_ref = ph::psd_from_raw(net("D", qz), 2, o.d_softplus, o.eps_d);
      CHECK(test::max_abs_diff(from_z.dissipation(q), d_ref) < 1e-12);
      const at::Tensor d_shared = ph::psd_from_raw(net("D", at::cat({q, z_shared}, 1)), 2, o.d_softplus, o.eps_d);
      CHECK(test::max_abs_diff(from_parts.dissipation(q), d_shared) < 1e-12);
    }
    REQUIRE(from_z.potential_and_grad);
    const auto [v, grad_v] = from_z.potential_and_grad(q);
    CHECK(test::max_abs_diff(v, net("V", q).squeeze(-1)) < 1e-12);
    const at::Tensor q_leaf = q.clone().requires_grad_(true);
    const at::Tensor grad_ref = torch::autograd::grad({net("V", q_leaf).sum()}, {q_leaf})[0];
    CHECK(test::max_abs_diff(grad_v, grad_ref) < 1e-12);
  }
}

TEST_CASE("phnn-features: with the context columns zeroed it is phnn on the normalised gradient, exp readout") {
  PhnnOptions o = features_f64();
  o.seed = 6;
  o.out_mul = 0.05;
  Phnn with_features(o);
  PhnnOptions plain_options = o;
  plain_options.inputs = "gradient";
  Phnn plain(plain_options);
  CHECK(plain.name() == "phnn");
  // Same V, M, D, W_u; the first (q) column of the D and G input layers from the features model, the 39 context
  // columns zero.
  TensorList w = with_features.weights(), reduced;
  const auto names = with_features.weight_names();
  for (std::size_t i = 0; i < w.size(); ++i) {
    if (names[i] == "G.0.weight" || names[i] == "D.0.weight") {
      w[i] = at::cat({w[i].narrow(1, 0, 1), at::zeros({w[i].size(0), 39}, kF64)}, 1);
      reduced.push_back(w[i].narrow(1, 0, 1));
    } else {
      reduced.push_back(w[i]);
    }
  }
  with_features.set_weights(w);
  plain.set_weights(reduced);
  at::Generator gen = make_generator(12);
  const TensorList params = {at::randn({2, 3, 4}, gen, kF64), at::randn({2, 4}, gen, kF64)};
  const TensorList g0 = {at::randn({2, 3, 4}, gen, kF64), at::randn({2, 4}, gen, kF64)};
  const TensorList g1 = {at::randn({2, 3, 4}, gen, kF64) * 1e-2, at::randn({2, 4}, gen, kF64) * 1e2};
  // q = the gradient divided by its RMS over each problem's tensor (mlp-lopt feature 0).
  const auto normalised = [](const TensorList& g) {
    TensorList out;
    for (const auto& x : g) {
      std::vector<int64_t> dims;
      for (int64_t d = 1; d < x.dim(); ++d) dims.push_back(d);
      out.push_back(x / (x.square().mean(dims, true) + 1e-5).sqrt());
    }
    return out;
  };
  const auto a1 = with_features.update(params, g0, at::Tensor(), with_features.init(params));
  const auto a2 = with_features.update(a1.params, g1, at::Tensor(), a1.state);
  const auto b1 = plain.update(params, normalised(g0), at::Tensor(), plain.init(params));
  const auto b2 = plain.update(b1.params, normalised(g1), at::Tensor(), b1.state);
  for (std::size_t i = 0; i < params.size(); ++i) {
    CHECK(test::max_abs_diff(a2.params[i], b2.params[i]) < 1e-13);
    CHECK(test::max_abs_diff(a2.state.slots.at("p")[i], b2.state.slots.at("p")[i]) < 1e-13);
  }
  CHECK(a2.state.slots.count("fac") == 1);
  CHECK(test::max_abs_diff(a2.diagnostics.at("H_before"), b2.diagnostics.at("H_before")) < 1e-12);

  SECTION("exp readout: u = δ·exp(exp_mult·μ) with [δ, μ] = [q̇ | q] W_uᵀ") {
    // W_u = [[0, −1], [0, 2]]: δ = −q, μ = 2q, so θ' = θ − out_mul · q · exp(0.002 q).
    TensorList wu = with_features.weights();
    wu.back() = T({0, -1, 0, 2}, {2, 2});
    with_features.set_weights(wu);
    const auto r = with_features.update(params, g0, at::Tensor(), with_features.init(params));
    const TensorList q = normalised(g0);
    for (std::size_t i = 0; i < params.size(); ++i) {
      CHECK(test::max_abs_diff(r.params[i], params[i] - 0.05 * q[i] * (0.002 * q[i]).exp()) < 1e-14);
    }
  }
}

TEST_CASE("phnn-features: registry names, defaults and option errors") {
  const auto opt = make_learned("phnn-features", {});
  CHECK(opt->name() == "phnn-features");
  CHECK(opt->options().at("inputs") == "lopt-features");
  CHECK(opt->options().at("readout") == "exp");
  CHECK(opt->options().at("mass") == "constant");
  CHECK(opt->architecture() ==
        "phnn d=1 hidden=16 mass=constant dissipation=state d_softplus=false inputs=lopt-features readout=exp");
  // V 49, G (16·40 + 16 + 16 + 1), M.raw 1, D (16·40 + 16 + 3·16 + 3), W_u 4.
  CHECK(opt->num_params() == 49 + 673 + 1 + 707 + 4);
  CHECK(make_learned("phnn", {})->architecture() == "phnn d=1 hidden=16 mass=state dissipation=state d_softplus=false");
  CHECK_THROWS_WITH(make_learned("phnn", {{"inputs", "lopt-features"}}), Catch::Contains("phnn-features"));
  CHECK_THROWS_WITH(make_learned("phnn-features", {{"inputs", "gradient"}}), Catch::Contains("phnn-features.inputs"));
  CHECK_THROWS_WITH(make_learned("phnn-features", {{"preprocess", "true"}}), Catch::Contains("preprocess"));
  CHECK_THROWS_WITH(make_learned("phnn", {{"readout", "log"}}), Catch::Contains("phnn.readout"));
}
