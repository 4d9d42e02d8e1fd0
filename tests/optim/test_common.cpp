// Properties every hand-designed optimizer shares: batch independence, dtype handling, functional updates.
#include "support/catch.hpp"

#include <torch/csrc/autograd/autograd.h>

#include "hamlet/optim/registry.hpp"
#include "optim_fixtures.hpp"
#include "support/test_support.hpp"

using namespace hamlet;
using namespace hamlet::optim;
using hamlet::test::max_abs_diff;

namespace {

// Options making every optimizer deterministic and well behaved on the test quadratics.
OptionMap test_options(const std::string& name) {
  if (name == "ecdsep") return {{"nu", "0"}, {"deltaEn", "1"}};
  if (name == "symplectic-euler") return {{"friction", "0.9"}};
  if (name == "sgd") return {{"lr", "0.1"}};
  return {};
}

// Runs `steps` updates from `theta0` and returns every parameter iterate and the final state.
std::pair<std::vector<at::Tensor>, OptimizerState> trajectory(const Optimizer& opt, const test::Quadratic& q,
                                                              const at::Tensor& theta0, int steps) {
  at::Tensor theta = theta0;
  OptimizerState state = opt.init({theta});
  const at::Tensor fmin = q.min_loss();
  std::vector<at::Tensor> out;
  for (int t = 0; t < steps; ++t) {
    auto r = opt.update({theta}, {q.grad(theta)}, q.loss(theta) - fmin, state);
    theta = r.params[0];
    state = std::move(r.state);
    out.push_back(theta);
  }
  return {out, state};
}

}  // namespace

TEST_CASE("every optimizer: B problems in one call equal each problem run alone") {
  const auto q = test::Quadratic::random(3, 5, 71);
  at::Generator gen = make_generator(72);
  const at::Tensor start = at::randn({3, 5}, gen, at::TensorOptions().dtype(at::kDouble));
  for (const auto& name : hand_designed_names()) {
    DYNAMIC_SECTION(name) {
      const auto opt = make_optimizer(name, test_options(name));
      const auto batched = trajectory(*opt, q, start, 30).first;
      for (int64_t i = 0; i < 3; ++i) {
        const auto alone = trajectory(*opt, q.slice(i), start.narrow(0, i, 1), 30).first;
        double worst = 0;
        for (std::size_t t = 0; t < alone.size(); ++t) {
          worst = std::max(worst, max_abs_diff(batched[t].narrow(0, i, 1), alone[t]));
        }
        INFO(name << ", problem " << i);
        CHECK(worst < 1e-12);
      }
    }
  }
}

TEST_CASE("every optimizer: float32 stays float32 and tracks the float64 trajectory") {
  const auto q64 = test::Quadratic::random(2, 5, 81);
  const test::Quadratic q32{q64.a.to(at::kFloat), q64.b.to(at::kFloat)};
  const at::Tensor start = at::zeros({2, 5}, at::kDouble);
  for (const auto& name : hand_designed_names()) {
    DYNAMIC_SECTION(name) {
      const auto opt = make_optimizer(name, test_options(name));
      const auto [t64, s64] = trajectory(*opt, q64, start, 20);
      const auto [t32, s32] = trajectory(*opt, q32, start.to(at::kFloat), 20);
      CHECK(t32.back().scalar_type() == at::kFloat);
      for (const auto& [slot, tensors] : s32.slots) {
        for (const auto& t : tensors) CHECK(t.scalar_type() == at::kFloat);
      }
      for (const auto& [key, value] : s32.scalars) CHECK(value.scalar_type() == at::kFloat);
      const double scale = t64.back().abs().max().item<double>();
      INFO(name << ": float32 vs float64 after 20 steps");
      CHECK(max_abs_diff(t32.back(), t64.back()) < 1e-4 * std::max(1.0, scale));
    }
  }
}

TEST_CASE("every optimizer: update() is functional and differentiable") {
  const auto q = test::Quadratic::random(2, 4, 91);
  for (const auto& name : hand_designed_names()) {
    DYNAMIC_SECTION(name) {
      const auto opt = make_optimizer(name, test_options(name));
      // Two steps so that the buffers are nonzero, then a step from autograd leaves.
      auto [iterates, state] = trajectory(*opt, q, at::zeros({2, 4}, at::kDouble), 2);
      const at::Tensor theta = iterates.back().detach().requires_grad_(true);
      const at::Tensor grad = q.grad(theta.detach()).requires_grad_(true);
      const at::Tensor theta_copy = theta.detach().clone(), grad_copy = grad.detach().clone();
      std::map<std::string, at::Tensor> slot_copies;
      for (const auto& [slot, tensors] : state.slots) slot_copies[slot] = tensors[0].clone();
      const at::Tensor loss = (q.loss(theta) - q.min_loss()).detach();

      auto r = opt->update({theta}, {grad}, loss, state);
      CHECK(at::equal(theta.detach(), theta_copy));
      CHECK(at::equal(grad.detach(), grad_copy));
      for (const auto& [slot, copy] : slot_copies) CHECK(at::equal(state.slots.at(slot)[0], copy));
      CHECK(r.state.step == state.step + 1);
      for (const auto& [key, value] : r.diagnostics) CHECK(value.sizes() == at::IntArrayRef({2}));

      // θ_{t+1} is a differentiable function of θ_t and g_t (what a learned-optimizer unroll relies on).
      REQUIRE(r.params[0].requires_grad());
      const auto d = torch::autograd::grad({r.params[0].sum()}, {theta, grad});
      CHECK(at::isfinite(d[0]).all().item<bool>());
      CHECK(at::isfinite(d[1]).all().item<bool>());
    }
  }
}
