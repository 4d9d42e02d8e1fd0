#include "support/catch.hpp"

#include "hamlet/optim/adam.hpp"
#include "hamlet/optim/momentum.hpp"
#include "hamlet/optim/nag.hpp"
#include "hamlet/optim/registry.hpp"
#include "hamlet/optim/rmsprop.hpp"
#include "hamlet/optim/sgd.hpp"
#include "optim_fixtures.hpp"
#include "support/test_support.hpp"

using namespace hamlet;
using namespace hamlet::optim;
using hamlet::test::max_abs_diff;
using hamlet::test::row;

namespace {

// Applies `steps` updates with the same gradient g = (0.3, −0.4) from θ = 0 and returns each step's Δθ.
std::vector<at::Tensor> constant_gradient_steps(const Optimizer& opt, int steps) {
  const at::Tensor g = row({0.3, -0.4});
  at::Tensor theta = row({0.0, 0.0});
  OptimizerState state = opt.init({theta});
  std::vector<at::Tensor> deltas;
  for (int t = 0; t < steps; ++t) {
    auto r = opt.update({theta}, {g}, at::Tensor(), state);
    deltas.push_back(r.params[0] - theta);
    theta = r.params[0];
    state = r.state;
  }
  return deltas;
}

}  // namespace

TEST_CASE("classic optimizers: known answers with g = (0.3, -0.4) (docs/methods.md §6.4)") {
  const at::Tensor g = row({0.3, -0.4});
  SECTION("plain SGD, lr 0.01") {
    const auto d = constant_gradient_steps(Sgd(SgdOptions{0.01}), 2);
    CHECK(max_abs_diff(d[0], row({-0.003, 0.004})) < 1e-9);
    CHECK(max_abs_diff(d[1], row({-0.003, 0.004})) < 1e-9);
  }
  SECTION("heavy-ball momentum 0.9, lr 0.01: b = g, then b = 1.9g") {
    const auto d = constant_gradient_steps(Momentum(MomentumOptions{0.01, 0.9}), 2);
    CHECK(max_abs_diff(d[0], row({-0.003, 0.004})) < 1e-9);
    CHECK(max_abs_diff(d[1], row({-0.0057, 0.0076})) < 1e-9);
  }
  SECTION("NAG 0.9, lr 0.01: g + 0.9b = 1.9g at the first step") {
    const auto d = constant_gradient_steps(Nag(NagOptions{0.01, 0.9}), 2);
    CHECK(max_abs_diff(d[0], row({-0.0057, 0.0076})) < 1e-9);
    // b = 1.9g, then g + 0.9·1.9g = 2.71g.
    CHECK(max_abs_diff(d[1], -0.01 * 2.71 * g) < 1e-9);
  }
  SECTION("Adam, lr 0.1: -0.1·g/(|g| + 1e-8) at steps 1 and 2 (bias correction makes m̂ = g, v̂ = g²)") {
    AdamOptions o;
    o.lr = 0.1;
    const auto d = constant_gradient_steps(Adam(o), 2);
    const at::Tensor expected = -0.1 * g / (g.abs() + 1e-8);
    CHECK(max_abs_diff(d[0], expected) < 1e-9);
    CHECK(max_abs_diff(d[1], expected) < 1e-9);
    CHECK(max_abs_diff(d[0], row({-0.1, 0.1})) < 1e-7);
  }
  SECTION("RMSprop, lr 0.03: -0.03·g/(0.1|g| + 1e-8)") {
    RmsPropOptions o;
    o.lr = 0.03;
    const auto d = constant_gradient_steps(RmsProp(o), 1);
    CHECK(max_abs_diff(d[0], -0.03 * g / (0.1 * g.abs() + 1e-8)) < 1e-9);
    CHECK(max_abs_diff(d[0], row({-0.3, 0.3})) < 1e-6);
  }
}

TEST_CASE("classic optimizers keep their state in the documented slots") {
  const at::Tensor theta = row({1.0, 2.0});
  const at::Tensor g = row({0.3, -0.4});
  SECTION("momentum") {
    Momentum opt;
    auto r = opt.update({theta}, {g}, at::Tensor(), opt.init({theta}));
    CHECK(max_abs_diff(r.state.slots.at("momentum_buffer")[0], g) < 1e-15);
    CHECK(r.state.step == 1);
  }
  SECTION("adam") {
    Adam opt;
    auto r = opt.update({theta}, {g}, at::Tensor(), opt.init({theta}));
    CHECK(max_abs_diff(r.state.slots.at("exp_avg")[0], 0.1 * g) < 1e-15);
    CHECK(max_abs_diff(r.state.slots.at("exp_avg_sq")[0], 1e-3 * g * g) < 1e-15);
    CHECK(r.state.step == 1);
  }
  SECTION("rmsprop") {
    RmsProp opt;
    auto r = opt.update({theta}, {g}, at::Tensor(), opt.init({theta}));
    CHECK(max_abs_diff(r.state.slots.at("square_avg")[0], 0.01 * g * g) < 1e-15);
  }
  SECTION("an undefined gradient leaves its parameter and buffers untouched") {
    Adam opt;
    const at::Tensor other = row({5.0});
    auto r = opt.update({theta, other}, {g, at::Tensor()}, at::Tensor(), opt.init({theta, other}));
    CHECK(at::equal(r.params[1], other));
    CHECK(at::equal(r.state.slots.at("exp_avg")[1], at::zeros_like(other)));
    CHECK_FALSE(at::equal(r.params[0], theta));
  }
}

TEST_CASE("classic optimizers converge on a well-conditioned quadratic") {
  // Condition number about 3: every method at a sensible step size shrinks the loss gap at least 1000-fold
  // within 300 steps (gradient descent alone contracts by about 1 − lr·λ_min per step).
  const auto q = test::Quadratic::random(4, 8, 11);
  const at::Tensor theta0 = at::zeros({4, 8}, at::kDouble);
  const at::Tensor gap0 = q.loss(theta0) - q.min_loss();
  const std::vector<std::pair<std::string, OptionMap>> cases = {
      {"sgd", {{"lr", "0.3"}}},      {"momentum", {{"lr", "0.05"}}}, {"nag", {{"lr", "0.05"}}},
      {"adam", {{"lr", "0.05"}}},    {"rmsprop", {{"lr", "0.01"}}},
  };
  for (const auto& [name, options] : cases) {
    DYNAMIC_SECTION(name) {
      const auto opt = make_optimizer(name, options);
      std::vector<at::Tensor> gaps;
      test::run_quadratic(*opt, q, theta0, 300, &gaps);
      const double ratio = (gaps.back() / gap0).max().item<double>();
      INFO(name << ": worst final/initial gap ratio " << ratio);
      CHECK(ratio < 1e-3);
    }
  }
}
