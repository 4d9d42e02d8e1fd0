#include "support/catch.hpp"

#include <torch/csrc/autograd/autograd.h>

#include "hamlet/core/error.hpp"
#include "hamlet/tasks/quadratic.hpp"
#include "hamlet/tasks/registry.hpp"
#include "support/test_support.hpp"

using namespace hamlet;
using namespace hamlet::tasks;

namespace {
std::pair<at::Tensor, at::Tensor> loss_and_grad(const ProblemBatch& batch, const at::Tensor& theta) {
  at::Tensor leaf = theta.detach().requires_grad_(true);
  at::Tensor loss = batch.loss({leaf}, 0);
  at::Tensor grad = torch::autograd::grad({loss.sum()}, {leaf})[0];
  return {loss.detach(), grad};
}
}  // namespace

TEST_CASE("quadratic loss and gradient match the closed form (docs/methods.md §5.1)") {
  const auto opts = at::TensorOptions().dtype(at::kDouble);
  QuadraticBatch batch(at::tensor({1.0, 2.0, 3.0, 4.0}, opts).reshape({1, 2, 2}), at::tensor({1.0, 1.0}, opts).reshape({1, 2}));
  auto [f0, g0] = loss_and_grad(batch, at::zeros({1, 2}, opts));
  CHECK(f0.item<double>() == Approx(2.0).margin(1e-12));
  CHECK(test::max_abs_diff(g0, at::tensor({-8.0, -12.0}, opts).reshape({1, 2})) < 1e-12);
  auto [f1, g1] = loss_and_grad(batch, at::tensor({1.0, 0.0}, opts).reshape({1, 2}));
  CHECK(f1.item<double>() == Approx(4.0).margin(1e-12));
  CHECK(test::max_abs_diff(g1, at::tensor({12.0, 16.0}, opts).reshape({1, 2})) < 1e-12);
  // The least-squares optimum has zero loss, and ∇F = 2Wᵀ(Wθ − y) everywhere.
  auto [fs, gs] = loss_and_grad(batch, batch.optimum());
  CHECK(fs.item<double>() < 1e-20);
  CHECK(gs.abs().max().item<double>() < 1e-10);
}

TEST_CASE("quadratic problems are paired: a pure function of (split, seed, index)") {
  QuadraticTask task(QuadraticOptions::from_map({{"dtype", "float64"}}));
  const auto all = task.sample(Split::kTest, 3, 0, 6, at::kCPU);
  auto& qa = dynamic_cast<QuadraticBatch&>(*all);
  CHECK(qa.w().sizes().vec() == std::vector<int64_t>({6, 10, 10}));
  CHECK(qa.y().sizes().vec() == std::vector<int64_t>({6, 10}));
  CHECK(at::equal(qa.initial_params()[0], at::zeros({6, 10}, at::kDouble)));
  // E‖y‖² = n = 10: the mean start loss of 6 problems is in a loose band around it.
  const double start = qa.loss(qa.initial_params(), 0).mean().item<double>();
  CHECK(start > 3.0);
  CHECK(start < 20.0);

  const auto again = task.sample(Split::kTest, 3, 0, 6, at::kCPU);
  CHECK(at::equal(dynamic_cast<QuadraticBatch&>(*again).w(), qa.w()));
  for (int64_t i = 0; i < 6; ++i) {
    const auto one = task.sample(Split::kTest, 3, i, 1, at::kCPU);
    CHECK(at::equal(dynamic_cast<QuadraticBatch&>(*one).w()[0], qa.w()[i]));
  }
  const auto other_split = task.sample(Split::kValidation, 3, 0, 1, at::kCPU);
  const auto other_seed = task.sample(Split::kTest, 4, 0, 1, at::kCPU);
  CHECK_FALSE(at::equal(dynamic_cast<QuadraticBatch&>(*other_split).w()[0], qa.w()[0]));
  CHECK_FALSE(at::equal(dynamic_cast<QuadraticBatch&>(*other_seed).w()[0], qa.w()[0]));
  // The same problem in float32 is the float64 problem rounded.
  QuadraticTask task32;
  const auto f32 = task32.sample(Split::kTest, 3, 0, 2, at::kCPU);
  CHECK(test::max_abs_diff(dynamic_cast<QuadraticBatch&>(*f32).w(), qa.w().narrow(0, 0, 2)) < 1e-6);
}

TEST_CASE("batched quadratic losses and gradients equal one-by-one evaluation") {
  QuadraticTask task(QuadraticOptions::from_map({{"dim", "7"}, {"dtype", "float64"}}));
  const auto batch = task.sample(Split::kTrain, 11, 0, 5, at::kCPU);
  const at::Tensor theta = at::randn({5, 7}, at::kDouble);
  auto [fb, gb] = loss_and_grad(*batch, theta);
  for (int64_t i = 0; i < 5; ++i) {
    const auto one = task.sample(Split::kTrain, 11, i, 1, at::kCPU);
    auto [f, g] = loss_and_grad(*one, theta.narrow(0, i, 1));
    CHECK(std::abs(f.item<double>() - fb[i].item<double>()) < 1e-12);
    CHECK(test::max_abs_diff(g[0], gb[i]) < 1e-12);
  }
}

TEST_CASE("task registry and option validation") {
  CHECK(make_task("quadratic", {{"dim", "3"}})->options().at("dim") == "3");
  std::string valid;  // the message lists the registry's names in table order
  for (const auto& name : task_names()) valid += (valid.empty() ? "" : ", ") + name;
  CHECK_THROWS_WITH(make_task("cubic", {}), Catch::Contains("unknown task 'cubic'; valid tasks: " + valid));
  CHECK_THROWS_WITH(make_task("quadratic", {{"dim", "0"}}), Catch::Contains("quadratic.dim") && Catch::Contains("0"));
  CHECK_THROWS_WITH(make_task("quadratic", {{"dimm", "3"}}), Catch::Contains("dimm") && Catch::Contains("valid options"));
  CHECK_THROWS_WITH(make_task("quadratic", {{"dtype", "half"}}), Catch::Contains("float32 or float64"));
  CHECK_THROWS_WITH(make_task("mlp", {{"activation", "swish"}}), Catch::Contains("mlp.activation"));
  CHECK(parse_split("validation") == Split::kValidation);
  CHECK_THROWS_WITH(parse_split("dev"), Catch::Contains("train, validation, test"));
}
