// phnn-lift (include/hamlet/learned/phnn_lift.hpp, docs/methods.md §13): structure of the port-Hamiltonian
// system, the integrator, known answers, meta-gradients, batching, options and the registry.
#include <torch/csrc/autograd/autograd.h>

#include <cmath>

#include "hamlet/core/seed.hpp"
#include "hamlet/learned/phnn_lift.hpp"
#include "hamlet/learned/registry.hpp"
#include "learned_fixtures.hpp"
#include "support/catch.hpp"
#include "support/test_support.hpp"

using namespace hamlet;
using namespace hamlet::learned;

namespace {

const auto kF64 = at::TensorOptions().dtype(at::kDouble);
constexpr lift::Kinetic kQuad = lift::Kinetic::kQuadratic;
constexpr lift::Kinetic kRel = lift::Kinetic::kRelativistic;

at::Tensor T(const std::vector<double>& values, std::vector<int64_t> shape) {
  return at::tensor(values, at::kDouble).reshape(shape);
}

PhnnLiftOptions f64() {
  PhnnLiftOptions o;
  o.dtype = "float64";
  return o;
}

std::size_t index_of(const LearnedOptimizer& opt, const std::string& name) {
  const auto names = opt.weight_names();
  return static_cast<std::size_t>(std::find(names.begin(), names.end(), name) - names.begin());
}

// A random state of R rows with k momenta: momenta, metric, coupling, rates, direct term, gradient, position.
struct State {
  at::Tensor p, m, coupling, rho, direct, g, q;
};
State random_state(int64_t rows, int64_t k, uint64_t seed) {
  at::Generator gen = make_generator(seed);
  State s;
  s.p = 2.0 * at::randn({rows, k}, gen, kF64);
  s.m = at::rand({rows}, gen, kF64) + 0.05;
  s.coupling = at::randn({rows, k}, gen, kF64);
  s.rho = at::rand({rows, k}, gen, kF64) * 3.0;
  s.direct = at::randn({rows}, gen, kF64);
  s.g = at::randn({rows}, gen, kF64);
  s.q = at::randn({rows}, gen, kF64);
  return s;
}

// A test potential V(q) = ½ q² + 0.3 cos q per row (the optimizer has V ≡ 0; the field takes any ∂H/∂q).
at::Tensor potential(const at::Tensor& q) { return 0.5 * q.square() + 0.3 * q.cos(); }

}  // namespace

TEST_CASE("phnn-lift: the energy is a scalar per coordinate with the closed-form momentum gradient") {
  // Hand values: quadratic p = (1, 2, −2), m = 2: K = 9/4; relativistic c = 1, m = 1, p = 0.75:
  // K = √(1 + 0.5625) − 1 = 0.25, ∂K/∂p = 0.75/1.25 = 0.6.
  CHECK(lift::kinetic_energy(T({1, 2, -2}, {1, 3}), T({2}, {1}), kQuad, 1.0).item<double>() == Approx(2.25).epsilon(1e-15));
  CHECK(lift::kinetic_energy(T({0.75}, {1, 1}), T({1}, {1}), kRel, 1.0).item<double>() == Approx(0.25).epsilon(1e-15));
  CHECK(lift::kinetic_grad(T({0.75}, {1, 1}), T({1}, {1}), kRel, 1.0).item<double>() == Approx(0.6).epsilon(1e-15));
  for (const auto kinetic : {kQuad, kRel}) {
    INFO((kinetic == kQuad ? "quadratic" : "relativistic"));
    const State s = random_state(50, 3, 1);
    const at::Tensor p = s.p.clone().requires_grad_(true);
    const at::Tensor h = lift::kinetic_energy(p, s.m, kinetic, 0.7);
    CHECK(h.sizes() == at::IntArrayRef({50}));
    const at::Tensor grad = torch::autograd::grad({h.sum()}, {p})[0];
    CHECK(test::max_abs_diff(grad, lift::kinetic_grad(s.p, s.m, kinetic, 0.7)) < 1e-12);
    CHECK(h.min().item<double>() >= 0.0);
  }
  // The relativistic speed is below c for any momentum, and small momenta see the quadratic energy.
  const State s = random_state(50, 3, 2);
  CHECK(lift::kinetic_grad(1e6 * s.p, s.m, kRel, 0.7).abs().max().item<double>() < 0.7);
  const at::Tensor small = 1e-5 * s.p;
  CHECK(test::max_rel_diff(lift::kinetic_energy(small, s.m, kRel, 0.7), lift::kinetic_energy(small, s.m, kQuad, 0.7)) <
        1e-8);
}

TEST_CASE("phnn-lift: J is skew, R is PSD, and R's momentum block turns into the rates: R∇H = (0, ρ p)") {
  for (const auto kinetic : {kQuad, kRel}) {
    INFO((kinetic == kQuad ? "quadratic" : "relativistic"));
    const State s = random_state(200, 4, 3);
    const lift::Structure st = lift::structure(s.p, s.m, s.coupling, s.rho, s.direct, kinetic, 0.5);
    CHECK(st.J.sizes() == at::IntArrayRef({200, 5, 5}));
    CHECK(test::max_abs_diff(st.J, -st.J.transpose(1, 2)) == 0.0);
    CHECK(test::max_abs_diff(st.R, st.R.transpose(1, 2)) == 0.0);
    CHECK(at::linalg_eigvalsh(st.R).min().item<double>() >= -1e-14);
    const at::Tensor b = lift::kinetic_grad(s.p, s.m, kinetic, 0.5);
    const at::Tensor r = lift::dissipation(s.p, s.m, s.rho, kinetic, 0.5);
    CHECK(test::max_abs_diff(r * b, s.rho * s.p) < 1e-12);
  }
}

TEST_CASE("phnn-lift: passivity dH/dt = -∇HᵀR∇H + ∇HᵀGu <= ∇HᵀGu along the continuous dynamics") {
  for (const auto kinetic : {kQuad, kRel}) {
    INFO((kinetic == kQuad ? "quadratic" : "relativistic"));
    const State s = random_state(300, 3, 4);
    const at::Tensor q = s.q.clone().requires_grad_(true), p = s.p.clone().requires_grad_(true);
    const at::Tensor h = potential(q) + lift::kinetic_energy(p, s.m, kinetic, 1.3);
    const TensorList grad = torch::autograd::grad({h.sum()}, {q, p});
    const at::Tensor r = lift::dissipation(s.p, s.m, s.rho, kinetic, 1.3);
    const at::Tensor x_dot = lift::field(grad[0], grad[1], s.m, s.coupling, r, s.rho, s.direct, s.g);
    // The field equals (J − R)∇H + G u assembled from the matrices.
    const lift::Structure st = lift::structure(s.p, s.m, s.coupling, s.rho, s.direct, kinetic, 1.3);
    const at::Tensor nabla = at::cat({grad[0].unsqueeze(-1), grad[1]}, -1);
    const at::Tensor assembled = at::matmul(st.J - st.R, nabla.unsqueeze(-1)).squeeze(-1) + st.G * s.g.unsqueeze(-1);
    CHECK(test::max_abs_diff(x_dot, assembled) < 1e-12);
    const at::Tensor rate = (nabla * x_dot).sum(-1);
    const at::Tensor supplied = (nabla * st.G).sum(-1) * s.g;
    const at::Tensor dissipated = (nabla.unsqueeze(1).matmul(st.R).squeeze(1) * nabla).sum(-1);
    CHECK(test::max_abs_diff(rate, supplied - dissipated) < 1e-11);
    CHECK((rate - supplied).max().item<double>() <= 1e-12);
  }
}

TEST_CASE("phnn-lift: with R = 0 and G = 0 the step is semi-implicit Euler: bounded energy error, no drift") {
  // V = ½ q², κ = (0.5, 0.3, 0.2), m = 1, h = 0.05 for 4000 steps (t = 200, about 20 periods of ω = √Σκ²/m ≈ 0.62).
  // Explicit Euler multiplies the energy of this oscillator by 1 + h²ω² every step; the splitting keeps it within
  // O(h) of H₀ for all time.
  const at::Tensor coupling = T({0.5, 0.3, 0.2}, {1, 3}), zero_rho = at::zeros({3}, kF64);
  const at::Tensor m = T({1.0}, {1}), none = at::zeros({1}, kF64);
  for (const auto kinetic : {kQuad, kRel}) {
    INFO((kinetic == kQuad ? "quadratic" : "relativistic"));
    const auto energy = [&](const at::Tensor& q, const at::Tensor& p) {
      return (0.5 * q.square() + lift::kinetic_energy(p, m, kinetic, 1.0)).item<double>();
    };
    at::Tensor q = T({1.0}, {1}), p = T({0.2, -0.1, 0.3}, {1, 3});
    at::Tensor qe = q, pe = p;
    const double h0 = energy(q, p);
    double first_half = 0, second_half = 0;
    const double h = 0.05;
    const int64_t steps = 4000;
    for (int64_t i = 0; i < steps; ++i) {
      const lift::Step st = lift::step(q, p, m, zero_rho, none, h, coupling, none, kinetic, 1.0);
      q = q + h * st.q_dot;
      p = st.p_next;
      double& worst = i < steps / 2 ? first_half : second_half;
      worst = std::max(worst, std::abs(energy(q, p) - h0));
      // Non-symplectic reference: explicit Euler on the same field.
      const at::Tensor b = lift::kinetic_grad(pe, m, kinetic, 1.0);
      const at::Tensor x_dot = lift::field(qe, b, m, coupling, at::zeros_like(pe), zero_rho, none, none);
      qe = qe + h * x_dot.select(-1, 0);
      pe = pe + h * x_dot.narrow(-1, 1, 3);
    }
    CHECK(second_half < 0.05 * h0);
    CHECK(second_half < 1.2 * first_half);
    CHECK(std::abs(energy(qe, pe) - h0) > 10 * second_half);
  }
}

TEST_CASE("phnn-lift: known answer of one step with N = 0 (float64)") {
  // One parameter θ = (2, −1) with g = (0.4, −0.3), state zero, default decays, N's output layer zero (as
  // initialised). Step 1: v = (1 − β_v) g², m = √v + eps = √(1 − β_v)|g| + eps, p_i = (1 − β_i) g, κ_i = 1/3, δ = 0,
  //   q̇ = −(1/3) Σ_i (1 − β_i) g / m = −0.037 g / m,
  // and without normalisation θ' = θ + out_mul (α q̇ − λ θ) with α = e^0 = 1. After t steps of the same g:
  //   p_i = (1 − β_i^t) g,  v = (1 − β_v^t) g²,  q̇ = −(1/3) Σ_i (1 − β_i^t) g / (√(1 − β_v^t)|g| + eps).
  const std::vector<double> theta = {2.0, -1.0}, g = {0.4, -0.3}, betas = {0.9, 0.99, 0.999};
  const auto q_dot = [&](double gj, int t, const std::vector<double>& kappa, double delta, double speed, bool rel) {
    const double m = std::sqrt(1.0 - std::pow(0.999, t)) * std::abs(gj) + 1e-8;
    double sum = 0;
    for (std::size_t i = 0; i < 3; ++i) {
      const double p = (1.0 - std::pow(betas[i], t)) * gj;
      const double v = p / m;
      sum += kappa[i] * (rel ? v / std::sqrt(1.0 + (v / speed) * (v / speed)) : v);
    }
    return -sum - delta * gj / m;
  };
  const TensorList params = {T(theta, {1, 2})}, grads = {T(g, {1, 2})};
  const std::vector<double> third = {1.0 / 3, 1.0 / 3, 1.0 / 3};
  // Runs `steps` updates of the constant gradient from the initial state, each from the last one's output, and
  // hands step t (1-based) and its result to `check`.
  const auto for_each_step = [&](const PhnnLift& opt, int steps, const auto& check) {
    optim::OptimizerState state = opt.init(params);
    TensorList x = params;
    for (int t = 1; t <= steps; ++t) {
      const auto r = opt.update(x, grads, at::Tensor(), state);
      check(t, r);
      x = r.params;
      state = r.state;
    }
  };

  SECTION("quadratic, five steps of a constant gradient, weight decay 0.5") {
    PhnnLiftOptions o = f64();
    o.normalise_output = false;
    o.out_mul = 0.1;
    o.weight_decay = 0.5;
    std::vector<double> expected = theta;
    for_each_step(PhnnLift(o), 5, [&](int t, const optim::StepResult& r) {
      for (std::size_t j = 0; j < 2; ++j) {
        expected[j] += 0.1 * (q_dot(g[j], t, third, 0.0, 1.0, false) - 0.5 * expected[j]);
      }
      CHECK(test::max_abs_diff(r.params[0], T(expected, {1, 2})) < 1e-13);
      if (t == 1) {
        // Step 1 by the numbers: q̇_j = −0.037 sign(g_j)/(√0.001 + 1e-8/|g_j|) = ∓1.17004..., θ' = θ + 0.1(q̇ − θ/2).
        CHECK(r.params[0][0][0].item<double>() == Approx(2.0 + 0.1 * (-0.037 / (std::sqrt(0.001) + 1e-8 / 0.4) - 1.0)));
        CHECK(r.params[0][0][0].item<double>() == Approx(1.78299582).epsilon(1e-8));
        // From zero momenta: H_before = 0, nothing dissipated or supplied; H_after = Σ_j Σ_i p_i² / (2 m_j).
        CHECK(r.diagnostics.at("H_before").item<double>() == 0.0);
        CHECK(r.diagnostics.at("supplied_power").item<double>() == 0.0);
        double h_after = 0;
        for (double gj : g) {
          for (double b : betas) h_after += std::pow((1 - b) * gj, 2) / (2 * (std::sqrt(0.001) * std::abs(gj) + 1e-8));
        }
        CHECK(r.diagnostics.at("H_after").item<double>() == Approx(h_after).epsilon(1e-12));
      }
    });
  }
  SECTION("relativistic, output bias set: κ_i = 1/3 + b_i, δ = b_4, α = 2") {
    PhnnLiftOptions o = f64();
    o.normalise_output = false;
    o.kinetic = "relativistic";
    o.speed = 0.2;
    PhnnLift opt(o);
    TensorList w = opt.weights();
    w[index_of(opt, "N.2.bias")] = T({0.1, -0.2, 0.3, 0.05}, {4});
    w[index_of(opt, "log_step")] = T({std::log(2.0)}, {1});
    opt.set_weights(w);
    const auto r = opt.update(params, grads, at::Tensor(), opt.init(params));
    const std::vector<double> kappa = {1.0 / 3 + 0.1, 1.0 / 3 - 0.2, 1.0 / 3 + 0.3};
    for (std::size_t j = 0; j < 2; ++j) {
      CHECK(r.params[0][0][j].item<double>() == Approx(theta[j] + 0.001 * 2 * q_dot(g[j], 1, kappa, 0.05, 0.2, true))
                                                    .epsilon(1e-14));
    }
  }
  SECTION("constant mass (the ablation): m = 1, so q̇ = −(1/3) Σ_i (1 − β_i^t) g, a mix of plain momenta") {
    PhnnLiftOptions o = f64();
    o.normalise_output = false;
    o.mass = "constant";
    o.out_mul = 0.1;
    const PhnnLift opt(o);
    std::vector<double> expected = theta;
    for_each_step(opt, 3, [&](int t, const optim::StepResult& r) {
      for (std::size_t j = 0; j < 2; ++j) {
        double mix = 0;
        for (double b : betas) mix += (1.0 - std::pow(b, t)) / 3.0;
        expected[j] -= 0.1 * mix * g[j];
      }
      CHECK(test::max_abs_diff(r.params[0], T(expected, {1, 2})) < 1e-14);
    });
    // Step 1 by the numbers: θ_0' = 2 − 0.1 · 0.037 · 0.4 = 1.99852.
    CHECK(opt.update(params, grads, at::Tensor(), opt.init(params)).params[0][0][0].item<double>() ==
          Approx(1.99852).epsilon(1e-12));
  }
  SECTION("normalised output: the first step is sign descent of size out_mul") {
    // q̇_j ∝ −sign(g_j) with the same magnitude for both coordinates up to eps/(√0.001 |g_j|) ≈ 1e-6 relative, so
    // its RMS is that magnitude.
    const PhnnLift opt(f64());
    const auto r = opt.update(params, grads, at::Tensor(), opt.init(params));
    CHECK(test::max_abs_diff(r.params[0], T({2.0 - 0.001, -1.0 + 0.001}, {1, 2})) < 1e-9);
  }
}

TEST_CASE("phnn-lift: the momenta are EMAs of g at 0.9/0.99/0.999 and v the EMA of g² (scalar loop)") {
  for (const bool perturbed : {false, true}) {
    INFO("perturbed net " << perturbed);
    PhnnLift opt(f64());
    CHECK(test::max_abs_diff(opt.decays(kF64), T({0.9, 0.99, 0.999}, {3})) < 1e-15);
    // The net shapes the direction only, so any net leaves the momenta as they are.
    if (perturbed) {
      TensorList w = opt.weights();
      at::Generator gen = make_generator(8);
      for (const char* name : {"N.0.weight", "N.2.weight", "N.2.bias"}) {
        w[index_of(opt, name)] = w[index_of(opt, name)] + at::randn(w[index_of(opt, name)].sizes(), gen, kF64);
      }
      opt.set_weights(w);
    }
    at::Generator gen = make_generator(9);
    TensorList x = {at::randn({2, 5}, gen, kF64)};
    optim::OptimizerState state = opt.init(x);
    std::vector<at::Tensor> gs;
    for (int t = 0; t < 12; ++t) {
      gs.push_back(at::randn({2, 5}, gen, kF64));
      const auto r = opt.update(x, {gs.back()}, at::Tensor(), state);
      x = r.params;
      state = r.state;
    }
    const at::Tensor p = state.slots.at("p")[0], v = state.slots.at("v")[0];
    CHECK(p.sizes() == at::IntArrayRef({2, 5, 3}));
    double worst = 0;
    for (int64_t b = 0; b < 2; ++b) {
      for (int64_t j = 0; j < 5; ++j) {
        const std::vector<double> decays = {0.9, 0.99, 0.999};
        std::vector<double> ema(3, 0.0);
        double second = 0;
        for (const auto& gt : gs) {
          const double gj = gt[b][j].item<double>();
          for (std::size_t i = 0; i < 3; ++i) ema[i] = decays[i] * ema[i] + (1 - decays[i]) * gj;
          second = 0.999 * second + 0.001 * gj * gj;
        }
        for (std::size_t i = 0; i < 3; ++i) worst = std::max(worst, std::abs(p[b][j][i].item<double>() - ema[i]));
        worst = std::max(worst, std::abs(v[b][j].item<double>() - second));
      }
    }
    CHECK(worst < 1e-14);
  }
}

TEST_CASE("phnn-lift: meta-gradients through 3 unrolled steps match central differences (float64)") {
  for (const bool variant : {false, true}) {
    INFO((variant ? "relativistic, time features, weight decay" : "defaults"));
    PhnnLiftOptions o = f64();
    o.out_mul = 0.3;
    if (variant) {
      o.kinetic = "relativistic";
      o.time_features = true;
      o.weight_decay = 0.1;
    }
    PhnnLift opt(o);
    at::Generator gen = make_generator(11);
    opt.set_weights(test::perturbed(opt.weights(), gen, 0.3));
    const TensorList start = {at::randn({2, 4}, gen, kF64), at::randn({2, 3}, gen, kF64)};
    const TensorList curvature = {at::rand({2, 4}, gen, kF64) + 0.5, at::rand({2, 3}, gen, kF64) + 0.5};
    // f(θ) = ½ Σ a θ², g = a θ; the objective is f after three updates.
    const auto objective = [&](const PhnnLift& lo) {
      TensorList x = start;
      optim::OptimizerState state = lo.init(x);
      for (int t = 0; t < 3; ++t) {
        const auto r = lo.update(x, {curvature[0] * x[0], curvature[1] * x[1]}, at::Tensor(), state);
        x = r.params;
        state = r.state;
      }
      return 0.5 * ((curvature[0] * x[0].square()).sum() + (curvature[1] * x[1].square()).sum());
    };
    opt.set_trainable(true);
    const TensorList w = opt.weights();
    const TensorList grads = torch::autograd::grad({objective(opt)}, w);
    opt.set_trainable(false);
    const double eps = 1e-6;
    for (const auto& [name, j] : std::vector<std::pair<std::string, int64_t>>{
             {"log_rho", 1}, {"N.0.weight", 3}, {"N.0.bias", 0}, {"N.2.weight", 5}, {"N.2.bias", 3}, {"log_step", 0}}) {
      const std::size_t i = index_of(opt, name);
      TensorList plus = opt.weights(), minus = opt.weights();
      plus[i] = plus[i].clone();
      minus[i] = minus[i].clone();
      plus[i].view(-1)[j] += eps;
      minus[i].view(-1)[j] -= eps;
      PhnnLift a(o), b(o);
      a.set_weights(plus);
      b.set_weights(minus);
      const double fd = (objective(a).item<double>() - objective(b).item<double>()) / (2 * eps);
      INFO(name << "[" << j << "]");
      CHECK(std::abs(fd) > 1e-6);
      CHECK(grads[i].view(-1)[j].item<double>() == Approx(fd).epsilon(1e-6).margin(1e-9));
    }
  }
}

TEST_CASE("phnn-lift: B problems at once equal one at a time") {
  PhnnLiftOptions o = f64();
  o.time_features = true;
  o.kinetic = "relativistic";
  PhnnLift opt(o);
  at::Generator gen = make_generator(12);
  opt.set_weights(test::perturbed(opt.weights(), gen, 0.5));
  const TensorList start = {at::randn({3, 2, 3}, gen, kF64), at::randn({3}, gen, kF64)};
  const auto run = [&](const TensorList& x0) {
    TensorList x = x0;
    optim::OptimizerState state = opt.init(x);
    for (int t = 0; t < 3; ++t) {
      const auto r = opt.update(x, {x[0].sin(), x[1] * 0.3}, at::Tensor(), state);
      x = r.params;
      state = r.state;
    }
    return std::make_pair(x, state);
  };
  const auto [all, all_state] = run(start);
  for (int64_t b = 0; b < 3; ++b) {
    const auto [one, one_state] = run({start[0].narrow(0, b, 1), start[1].narrow(0, b, 1)});
    for (std::size_t i = 0; i < 2; ++i) {
      CHECK(test::max_abs_diff(one[i], all[i].narrow(0, b, 1)) < 1e-14);
      CHECK(test::max_abs_diff(one_state.slots.at("p")[i], all_state.slots.at("p")[i].narrow(0, b, 1)) < 1e-14);
    }
  }
}

TEST_CASE("phnn-lift: options are refused with clear messages") {
  const auto refused = [](OptionMap o) { return make_learned("phnn-lift", std::move(o)); };
  CHECK_THROWS_WITH(refused({{"k", "0"}}), Catch::Contains("phnn-lift.k must be a positive integer"));
  CHECK_THROWS_WITH(refused({{"k", "2"}}),
                    Catch::Contains("phnn-lift.decays lists 3 decays but phnn-lift.k is 2"));
  CHECK_THROWS_WITH(refused({{"decays", "0.9:1.2:0.999"}}), Catch::Contains("phnn-lift.decays must list decays in (0, 1)"));
  CHECK_THROWS_WITH(refused({{"decays", "0.9:x"}}), Catch::Contains("separated by ':'"));
  CHECK_THROWS_WITH(refused({{"decays", "0.9:0.99:"}}), Catch::Contains("separated by ':'"));
  CHECK_THROWS_WITH(refused({{"kinetic", "cubic"}}),
                    Catch::Contains("phnn-lift.kinetic must be quadratic or relativistic, got 'cubic'"));
  CHECK_THROWS_WITH(refused({{"mass", "adam"}}),
                    Catch::Contains("phnn-lift.mass must be second-moment or constant, got 'adam'"));
  CHECK_THROWS_WITH(refused({{"kernel", "loop"}}), Catch::Contains("phnn-lift.kernel must be fused or tensor, got 'loop'"));
  CHECK_THROWS_WITH(refused({{"second_moment_decay", "1"}}), Catch::Contains("phnn-lift.second_moment_decay must be in [0, 1)"));
  CHECK_THROWS_WITH(refused({{"speed", "0"}}), Catch::Contains("phnn-lift.speed must be a positive"));
  CHECK_THROWS_WITH(refused({{"hidden", "0"}}), Catch::Contains("phnn-lift.hidden"));
  CHECK_THROWS_WITH(refused({{"weight_decay", "-1"}}), Catch::Contains("phnn-lift.weight_decay must be a finite number >= 0"));
  CHECK_THROWS_WITH(refused({{"dtype", "float16"}}), Catch::Contains("phnn-lift.dtype"));
  CHECK_THROWS_WITH(refused({{"preprocess", "true"}}), Catch::Contains("preprocess"));
  CHECK_NOTHROW(refused({{"k", "4"}, {"decays", "0.5:0.9:0.99:0.999"}}));
}

TEST_CASE("phnn-lift: registry, weight count, and trained weights round trip") {
  const auto opt = make_learned("phnn-lift", {{"seed", "3"}, {"out_mul", "0.01"}, {"dtype", "float64"}});
  CHECK(opt->name() == "phnn-lift");
  CHECK(opt->num_params() == 3 + (5 * 8 + 8) + (8 * 4 + 4) + 1);
  CHECK(make_learned("phnn-lift", {{"time_features", "true"}, {"hidden", "4"}})->num_params() == 3 + 16 * 4 + 4 + 4 * 4 + 4 + 1);
  CHECK(opt->architecture() == "phnn-lift k=3 hidden=8 mass=second-moment kinetic=quadratic time_features=false normalise_output=true");
  test::perturb(*opt, 5);
  TrainedWeights trained = trained_weights(*opt);
  trained.source = "lift.h5";
  const auto loaded = make_learned("phnn-lift", {}, trained);
  CHECK(test::same_weights(loaded->weights(), opt->weights()));
  CHECK(loaded->learning_rate() == 0.01);
  // The initial decays are not architecture (the weights hold the learned ones); k and the kinetic energy are.
  CHECK_NOTHROW(make_learned("phnn-lift", {{"decays", "0.5:0.6:0.7"}}, trained));
  CHECK_THROWS_WITH(make_learned("phnn-lift", {{"kinetic", "relativistic"}}, trained),
                    Catch::Contains("kinetic") && Catch::Contains("lift.h5"));
  const test::Problem pr = test::problem(2);
  const auto ra = opt->update(pr.params, pr.grads, at::Tensor(), opt->init(pr.params));
  const auto rb = loaded->update(pr.params, pr.grads, at::Tensor(), loaded->init(pr.params));
  for (std::size_t i = 0; i < ra.params.size(); ++i) CHECK(at::equal(ra.params[i], rb.params[i]));
}
