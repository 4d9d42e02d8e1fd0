#include <torch/csrc/autograd/autograd.h>

#include <array>
#include <cmath>

#include "hamlet/learned/preprocess.hpp"
#include "support/catch.hpp"
#include "support/test_support.hpp"

using namespace hamlet;
using hamlet::learned::preprocess;

TEST_CASE("preprocessing P matches every row of the docs/methods.md 1.5 table") {
  const double threshold = std::exp(-10.0);
  CHECK(threshold == Approx(4.5399929762e-5).epsilon(1e-10));
  // x, log feature, sign feature.
  const std::vector<std::array<double, 3>> table = {
      {0.0, -1.0, 0.0},
      {1.0, 9.99999989e-10, 1.0},
      {-2.0, 0.0693147186, -1.0},
      {0.01, -0.4605169186, 1.0},
      {-0.01, -0.4605169186, -1.0},
      {0.001, -0.6907745279, 1.0},
      {100.0, 0.4605170186, 1.0},
      {1e-5, -1.0, 0.2202646579},
      {-3e-5, -1.0, -0.6607939738},
      {threshold, -0.9999779760, 1.0},
  };
  std::vector<double> xs;
  for (const auto& row : table) xs.push_back(row[0]);
  const at::Tensor x = at::tensor(xs, at::kDouble);
  const at::Tensor out = preprocess(x);
  REQUIRE(out.sizes() == at::IntArrayRef({static_cast<int64_t>(xs.size()), 2}));
  for (std::size_t i = 0; i < table.size(); ++i) {
    INFO("x = " << table[i][0]);
    CHECK(std::abs(out[i][0].item<double>() - table[i][1]) < 1e-9);
    CHECK(std::abs(out[i][1].item<double>() - table[i][2]) < 1e-9);
  }

  SECTION("shape [..., 2], dtype kept, float32 within 1e-6 relative") {
    const at::Tensor x2 = x.reshape({2, 5});
    const at::Tensor out2 = preprocess(x2);
    CHECK(out2.sizes() == at::IntArrayRef({2, 5, 2}));
    CHECK(test::max_abs_diff(out2.reshape({10, 2}), out) == 0.0);
    const at::Tensor out32 = preprocess(x.to(at::kFloat));
    CHECK(out32.scalar_type() == at::kFloat);
    CHECK(at::allclose(out32.to(at::kDouble), out, 1e-6, 1e-7));
  }
}

TEST_CASE("preprocessing P: values-only and differentiable (state_grad) modes") {
  // x in the log branch (both signs), the small branch, and exactly 0.
  const at::Tensor x = at::tensor({-2.0, 0.5, 1e-5, -3e-5, 0.0}, at::kDouble).requires_grad_(true);

  SECTION("values only: no history, same values") {
    const at::Tensor out = preprocess(x, /*differentiable=*/false);
    CHECK_FALSE(out.requires_grad());
    CHECK(test::max_abs_diff(out, preprocess(x, true).detach()) == 0.0);
  }
  SECTION("differentiable: log branch sign(x)/(p(|x|+1e-8)), sign feature 0, small branch (0, e^p)") {
    const at::Tensor out = preprocess(x, /*differentiable=*/true);
    REQUIRE(out.requires_grad());
    const at::Tensor d_log = torch::autograd::grad({out.select(-1, 0).sum()}, {x}, {}, true)[0];
    const at::Tensor d_sign = torch::autograd::grad({out.select(-1, 1).sum()}, {x})[0];
    const double e10 = std::exp(10.0);
    const std::vector<double> want_log = {-1.0 / (10.0 * (2.0 + 1e-8)), 1.0 / (10.0 * (0.5 + 1e-8)), 0, 0, 0};
    const std::vector<double> want_sign = {0, 0, e10, e10, e10};
    CHECK(test::max_abs_diff(d_log, at::tensor(want_log, at::kDouble)) < 1e-9);
    CHECK(test::max_abs_diff(d_sign, at::tensor(want_sign, at::kDouble)) < 1e-9);
  }
}
