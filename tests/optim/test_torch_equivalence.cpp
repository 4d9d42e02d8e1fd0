// The classic baselines against LibTorch's own optimizers (docs/methods.md §6.1: "identical to torch::optim").
// torch::optim is used only here, in a test, to keep the heavy frontend headers out of the library.
#include "support/catch.hpp"

#include <torch/optim/adam.h>
#include <torch/optim/rmsprop.h>
#include <torch/optim/sgd.h>

#include "hamlet/optim/registry.hpp"
#include "optim_fixtures.hpp"
#include "support/test_support.hpp"

using namespace hamlet;

namespace {

// Runs hamlet's optimizer and the torch::optim one side by side for `steps` steps on the same quadratic and
// returns the largest parameter difference seen along the way.
double max_trajectory_diff(const optim::Optimizer& ours, torch::optim::Optimizer& theirs, at::Tensor& leaf,
                           const test::Quadratic& q, int64_t steps) {
  at::Tensor theta = leaf.detach().clone();
  optim::OptimizerState state = ours.init({theta});
  double worst = 0;
  for (int64_t t = 0; t < steps; ++t) {
    const at::Tensor g = q.grad(theta);
    leaf.mutable_grad() = g.clone();
    theirs.step();
    auto r = ours.update({theta}, {g}, q.loss(theta), state);
    theta = r.params[0];
    state = std::move(r.state);
    worst = std::max(worst, test::max_abs_diff(theta, leaf.detach()));
  }
  return worst;
}

}  // namespace

TEST_CASE("classic optimizers follow torch::optim to 1e-6 over 100 steps (double)") {
  const auto q = test::Quadratic::random(3, 6, 5);
  at::Generator gen = make_generator(99);
  const at::Tensor start = at::randn({3, 6}, gen, at::TensorOptions().dtype(at::kDouble));
  at::Tensor leaf = start.clone().requires_grad_(true);
  std::vector<at::Tensor> params{leaf};
  double diff = 1.0;
  SECTION("SGD") {
    torch::optim::SGD theirs(params, torch::optim::SGDOptions(0.1));
    diff = max_trajectory_diff(*optim::make_optimizer("sgd", {{"lr", "0.1"}}), theirs, leaf, q, 100);
  }
  SECTION("SGD with momentum 0.9") {
    torch::optim::SGD theirs(params, torch::optim::SGDOptions(0.03).momentum(0.9));
    diff = max_trajectory_diff(*optim::make_optimizer("momentum", {{"lr", "0.03"}}), theirs, leaf, q, 100);
  }
  SECTION("SGD with Nesterov momentum 0.9") {
    torch::optim::SGD theirs(params, torch::optim::SGDOptions(0.03).momentum(0.9).nesterov(true));
    diff = max_trajectory_diff(*optim::make_optimizer("nag", {{"lr", "0.03"}}), theirs, leaf, q, 100);
  }
  SECTION("Adam") {
    torch::optim::Adam theirs(params, torch::optim::AdamOptions(0.05));
    diff = max_trajectory_diff(*optim::make_optimizer("adam", {{"lr", "0.05"}}), theirs, leaf, q, 100);
  }
  SECTION("RMSprop") {
    torch::optim::RMSprop theirs(params, torch::optim::RMSpropOptions(0.01));
    diff = max_trajectory_diff(*optim::make_optimizer("rmsprop", {{"lr", "0.01"}}), theirs, leaf, q, 100);
  }
  INFO("largest parameter difference over the trajectory: " << diff);
  CHECK(diff <= 1e-6);
  // The trajectory really moved, so agreement is not trivial.
  CHECK(test::max_abs_diff(leaf.detach(), start) > 1e-2);
}
