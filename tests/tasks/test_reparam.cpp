#include <torch/csrc/autograd/autograd.h>

#include <cmath>

#include "hamlet/core/seed.hpp"
#include "hamlet/tasks/quadratic.hpp"
#include "hamlet/tasks/reparam.hpp"
#include "support/catch.hpp"
#include "support/test_support.hpp"

using namespace hamlet;
using namespace hamlet::tasks;

TEST_CASE("reparametrised problems: same losses at corresponding points, gradients scaled by s") {
  QuadraticOptions qo;
  qo.dim = 4;
  qo.dtype = "float64";
  const QuadraticTask task(qo);
  std::shared_ptr<const ProblemBatch> inner = task.sample(Split::kTrain, 3, 5, 3, c10::Device(c10::kCPU));
  const auto batch = reparametrise(inner, 2.0, 7, 5);
  const auto& r = dynamic_cast<const ReparamBatch&>(*batch);
  const at::Tensor s = r.scales()[0];
  CHECK(s.sizes() == at::IntArrayRef({3, 1}));
  CHECK(s.min().item<double>() >= 1e-2);
  CHECK(s.max().item<double>() <= 1e2);
  // θ'0 = θ0 / s, and the loss is the inner loss at θ = s θ'.
  at::Generator gen = make_generator(1);
  const at::Tensor theta = at::randn({3, 4}, gen, at::kDouble);
  CHECK(test::max_abs_diff(batch->loss({theta / s}, 0), inner->loss({theta}, 0)) < 1e-12);
  CHECK(test::max_abs_diff(batch->initial_params()[0] * s, inner->initial_params()[0]) == 0.0);
  // ∇F'(θ') = s ⊙ ∇F(s θ').
  const at::Tensor tp = (theta / s).requires_grad_(true), t = theta.clone().requires_grad_(true);
  const at::Tensor gp = torch::autograd::grad({batch->loss({tp}, 0).sum()}, {tp})[0];
  const at::Tensor g = torch::autograd::grad({inner->loss({t}, 0).sum()}, {t})[0];
  CHECK(test::max_abs_diff(gp, s * g) < 1e-10 * std::max(1.0, (s * g).abs().max().item<double>()));
  // A problem keeps its scale whatever batch it is drawn in; other problems get other scales.
  std::shared_ptr<const ProblemBatch> last = task.sample(Split::kTrain, 3, 7, 1, c10::Device(c10::kCPU));
  const auto alone = reparametrise(last, 2.0, 7, 7);
  CHECK(at::equal(dynamic_cast<const ReparamBatch&>(*alone).scales()[0], s.narrow(0, 2, 1)));
  CHECK(s[0].item<double>() != s[1].item<double>());
  CHECK_THROWS_WITH(reparametrise(inner, 0.0, 7, 5), Catch::Contains("decades"));
}
