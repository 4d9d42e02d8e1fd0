#include <torch/csrc/autograd/autograd.h>

#include <cmath>
#include <limits>
#include <vector>

#include "hamlet/learned/fast_tanh.hpp"
#include "support/catch.hpp"

using hamlet::learned::fast_tanh;

namespace {

// A dense grid over the range where tanh is not yet ±1 in float64, plus points near 0 and the saturated tails.
std::vector<double> grid() {
  std::vector<double> xs;
  for (int i = -40000; i <= 40000; ++i) xs.push_back(i * 5e-4);  // [-20, 20] in steps of 5e-4
  for (double x : {1e-30, 1e-12, 1e-7, 3e-4, 50.0, 400.0, 1e30}) {
    xs.push_back(x);
    xs.push_back(-x);
  }
  return xs;
}

// Largest |fast_tanh(x) − tanh(x)| with tanh evaluated by the C library in long double.
double max_abs_error(at::ScalarType dtype) {
  const std::vector<double> xs = grid();
  const at::Tensor y = fast_tanh(at::tensor(xs, at::kDouble).to(dtype)).to(at::kDouble);
  const at::Tensor x_rounded = at::tensor(xs, at::kDouble).to(dtype).to(at::kDouble);
  double worst = 0;
  for (std::size_t i = 0; i < xs.size(); ++i) {
    const long double exact = std::tanh(static_cast<long double>(x_rounded[i].item<double>()));
    worst = std::max(worst, static_cast<double>(std::fabs(y[i].item<double>() - exact)));
  }
  return worst;
}

}  // namespace

TEST_CASE("fast_tanh: tanh to about one ulp of 1, the derivatives of tanh, no graph without autograd") {
  SECTION("values: absolute error within 2.4e-7 (float32) and 4.5e-16 (float64) of the C library's tanh") {
    CHECK(max_abs_error(at::kFloat) <= 2.4e-7);
    CHECK(max_abs_error(at::kDouble) <= 4.5e-16);
  }
  SECTION("saturation, odd symmetry at the tails, NaN kept") {
    const double inf = std::numeric_limits<double>::infinity();
    for (auto dtype : {at::kFloat, at::kDouble}) {
      const at::Tensor y = fast_tanh(at::tensor({inf, -inf, 30.0, -30.0, 0.0}, at::kDouble).to(dtype));
      CHECK(y[0].item<double>() == 1.0);
      CHECK(y[1].item<double>() == -1.0);
      CHECK(y[2].item<double>() == 1.0);
      CHECK(y[3].item<double>() == -1.0);
      CHECK(y[4].item<double>() == 0.0);
      CHECK(std::isnan(fast_tanh(at::full({1}, std::nan(""), dtype)).item<double>()));
      CHECK(y.scalar_type() == dtype);
    }
  }
  SECTION("first and second derivatives equal tanh's written out (float64, 1e-13)") {
    const at::Tensor x = at::linspace(-4, 4, 81, at::kDouble).requires_grad_(true);
    const at::Tensor w = at::linspace(0.5, 2, 81, at::kDouble);
    const at::Tensor y = fast_tanh(x);
    const at::Tensor g = torch::autograd::grad({(w * y).sum()}, {x}, {}, true, /*create_graph=*/true)[0];
    const at::Tensor t = at::tanh(x.detach());
    CHECK(at::allclose(g, w * (1 - t * t), 0, 1e-13));
    const at::Tensor h = torch::autograd::grad({g.sum()}, {x})[0];
    CHECK(at::allclose(h, -2 * w * t * (1 - t * t), 0, 1e-13));
  }
  SECTION("without autograd: no graph node, a fresh tensor") {
    const at::Tensor x = at::linspace(-1, 1, 5, at::kFloat).requires_grad_(true);
    at::NoGradGuard guard;
    const at::Tensor y = fast_tanh(x);
    CHECK_FALSE(y.requires_grad());
    CHECK(y.data_ptr() != x.data_ptr());
  }
}
