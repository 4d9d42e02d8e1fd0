#include "support/catch.hpp"

#include <cmath>

#include "hamlet/optim/momentum.hpp"
#include "hamlet/optim/symplectic.hpp"
#include "hamlet/optim/symplectic_euler.hpp"
#include "optim_fixtures.hpp"
#include "support/test_support.hpp"

using namespace hamlet;
using namespace hamlet::optim;
using hamlet::test::max_abs_diff;
using hamlet::test::row;

namespace {

// The first-step length lr·(1−β)/√(½((1−β)² + 1)) for lr 0.01, β 0.9 (docs/methods.md §7.2).
constexpr double kFirstStep = 0.0014071951;

double length(const at::Tensor& x) { return x.norm().item<double>(); }

}  // namespace

TEST_CASE("symplectic-euler: known answers on L = ½θ² and equivalence to heavy ball (docs/methods.md §7.1)") {
  SymplecticEuler opt(SymplecticEulerOptions{0.1, 1.0});
  at::Tensor theta = row({1.0});
  OptimizerState state = opt.init({theta});
  const double expected[3][2] = {{-0.1, 0.99}, {-0.199, 0.9701}, {-0.29601, 0.940499}};
  for (int t = 0; t < 3; ++t) {
    const at::Tensor loss = 0.5 * (theta * theta).sum(1);
    auto r = opt.update({theta}, {theta}, loss, state);
    // The energy diagnostic is H of the incoming state: ½m_t² + L(θ_t).
    const double m_t = state.slots.at("p")[0].item<double>();
    CHECK(r.diagnostics.at("energy").item<double>() == Approx(0.5 * m_t * m_t + loss.item<double>()).margin(1e-15));
    theta = r.params[0];
    state = r.state;
    CHECK(state.slots.at("p")[0].item<double>() == Approx(expected[t][0]).margin(1e-9));
    CHECK(theta.item<double>() == Approx(expected[t][1]).margin(1e-9));
  }

  SECTION("θ equals heavy-ball SGD with momentum 1 and lr η² over 50 steps") {
    const auto q = test::Quadratic::random(2, 5, 3);
    const at::Tensor start = at::zeros({2, 5}, at::kDouble);
    const at::Tensor a = test::run_quadratic(SymplecticEuler(SymplecticEulerOptions{0.1, 1.0}), q, start, 50);
    const at::Tensor b = test::run_quadratic(Momentum(MomentumOptions{0.01, 1.0}), q, start, 50);
    CHECK(max_abs_diff(a, b) < 1e-12);
  }
}

TEST_CASE("symplectic-euler: energy is nearly conserved without friction, friction converges") {
  SECTION("μ = 1 on L = ½θ²: the iterate keeps oscillating and ½m² + L stays within 10% of its start") {
    SymplecticEuler opt;
    at::Tensor theta = row({1.0});
    OptimizerState state = opt.init({theta});
    double e_min = 1e9, e_max = -1e9, late_amplitude = 0;
    for (int t = 0; t < 2000; ++t) {
      auto r = opt.update({theta}, {theta}, 0.5 * (theta * theta).sum(1), state);
      const double e = r.diagnostics.at("energy").item<double>();
      e_min = std::min(e_min, e);
      e_max = std::max(e_max, e);
      theta = r.params[0];
      state = r.state;
      if (t >= 1900) late_amplitude = std::max(late_amplitude, std::abs(theta.item<double>()));
    }
    CHECK(e_min > 0.45);
    CHECK(e_max < 0.55);
    CHECK(late_amplitude > 0.9);
  }
  SECTION("μ = 0.9 on a random quadratic: the loss gap shrinks a millionfold in 300 steps") {
    const auto q = test::Quadratic::random(3, 8, 21);
    const at::Tensor start = at::zeros({3, 8}, at::kDouble);
    std::vector<at::Tensor> gaps;
    test::run_quadratic(SymplecticEuler(SymplecticEulerOptions{0.1, 0.9}), q, start, 300, &gaps);
    const at::Tensor gap0 = q.loss(start) - q.min_loss();
    CHECK((gaps.back() / gap0).max().item<double>() < 1e-6);
  }
}

TEST_CASE("symplectic (AdvancedSymplecticOptimizer): known answers (docs/methods.md §7.2)") {
  AdvancedSymplectic opt;
  const at::Tensor g = row({0.3, -0.4});
  const at::Tensor theta0 = row({1.0, 2.0});
  SECTION("steps 1 and 2 with the same gradient") {
    auto r1 = opt.update({theta0}, {g}, at::Tensor(), opt.init({theta0}));
    CHECK(max_abs_diff(r1.state.slots.at("p")[0], row({0.03, -0.04})) < 1e-12);
    CHECK(r1.diagnostics.at("energy").item<double>() == Approx(0.12625).margin(1e-12));
    CHECK(max_abs_diff(r1.params[0], row({0.9991556830, 2.0011257560})) < 1e-9);
    // α = lr/(√H + ε) = 0.0281439010: the step is α·m.
    CHECK(max_abs_diff(theta0 - r1.params[0], 0.0281439010 * row({0.03, -0.04})) < 1e-11);
    auto r2 = opt.update(r1.params, {g}, at::Tensor(), r1.state);
    CHECK(max_abs_diff(r2.state.slots.at("p")[0], row({0.057, -0.076})) < 1e-12);
    CHECK(r2.diagnostics.at("energy").item<double>() == Approx(0.1295125).margin(1e-12));
    CHECK(max_abs_diff(r2.params[0], row({0.9975718149, 2.0032375801})) < 1e-9);
    // α = 0.0277871589 at step 2 (§7.2): the step is α·m with m = (0.057, −0.076).
    CHECK(max_abs_diff(r1.params[0] - r2.params[0], 0.0277871589 * row({0.057, -0.076})) < 1e-11);
  }
  SECTION("scale invariance: g × 100 gives the same first step") {
    auto r = opt.update({theta0}, {100.0 * g}, at::Tensor(), opt.init({theta0}));
    CHECK(max_abs_diff(r.params[0], row({0.9991556829, 2.0011257561})) < 1e-9);
  }
  SECTION("per tensor: a 1-element tensor with g = 1 and a 2-element tensor with g = (1e-3, 0) both move 0.0014072") {
    const at::Tensor a = row({0.0}), b = row({0.0, 0.0});
    auto r = opt.update({a, b}, {row({1.0}), row({1e-3, 0.0})}, at::Tensor(), opt.init({a, b}));
    CHECK(length(r.params[0] - a) == Approx(kFirstStep).margin(1e-9));
    // √H is only 7e-4 here, so ε = 1e-8 shows in the 8th digit; the table quotes 0.0014072.
    CHECK(length(r.params[1] - b) == Approx(0.0014072).margin(1e-7));
  }
  SECTION("the first step has the same length for any nonzero gradient, per problem") {
    at::Generator gen = make_generator(7);
    const at::Tensor gs = at::randn({4, 6}, gen, at::TensorOptions().dtype(at::kDouble)) *
                          test::dvec({0.1, 1.0, 10.0, 1e3}).reshape({4, 1});
    const at::Tensor theta = at::zeros({4, 6}, at::kDouble);
    auto r = opt.update({theta}, {gs}, at::Tensor(), opt.init({theta}));
    const at::Tensor lengths = per_problem_sum_sq(r.params[0] - theta).sqrt();
    CHECK(max_abs_diff(lengths, at::full({4}, kFirstStep, at::kDouble)) < 1e-9);
  }
  SECTION("g = 0 with m ≠ 0 steps √2·lr along -m; m = g = 0 does not move") {
    const at::Tensor theta = row({0.0});
    OptimizerState state = opt.init({theta});
    state.slots["p"] = {row({1.0})};
    auto r = opt.update({theta}, {row({0.0})}, at::Tensor(), state);
    CHECK(r.state.slots.at("p")[0].item<double>() == Approx(0.9).margin(1e-15));
    CHECK(r.diagnostics.at("energy").item<double>() == Approx(0.405).margin(1e-12));
    CHECK(r.params[0].item<double>() == Approx(-0.0141421354).margin(1e-9));
    auto still = opt.update({theta}, {row({0.0})}, at::Tensor(), opt.init({theta}));
    CHECK(at::equal(still.params[0], theta));
  }
}

TEST_CASE("symplectic (AdvancedSymplecticOptimizer) approaches the minimum of a quadratic") {
  // The step length stays near lr (the update is scale-free), so it settles within about lr of the optimum
  // rather than converging: the gap shrinks 100-fold and then stalls at the O(lr²) level.
  const auto q = test::Quadratic::random(3, 8, 31);
  const at::Tensor start = at::zeros({3, 8}, at::kDouble);
  std::vector<at::Tensor> gaps;
  test::run_quadratic(AdvancedSymplectic(), q, start, 600, &gaps);
  const at::Tensor gap0 = q.loss(start) - q.min_loss();
  CHECK((gaps.back() / gap0).max().item<double>() < 1e-2);
}
