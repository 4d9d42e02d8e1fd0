#pragma once
// Shared fixtures for the optim tests: small analytic problems whose gradients need no autograd.
#include <ATen/ATen.h>

#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "hamlet/core/seed.hpp"
#include "hamlet/core/tensor.hpp"
#include "hamlet/optim/optimizer.hpp"

namespace hamlet::test {

inline at::Tensor dvec(std::initializer_list<double> values) {
  return at::tensor(std::vector<double>(values), at::TensorOptions().dtype(at::kDouble));
}
// A [1, n] double tensor: one problem.
inline at::Tensor row(std::initializer_list<double> values) { return dvec(values).reshape({1, -1}); }

// B random quadratics F(θ) = ½θᵀAθ − bᵀθ over one [B, n] tensor, with A = I + MMᵀ/(2n) (condition number
// about 3): gradient Aθ − b, minimum at A⁻¹b.
struct Quadratic {
  at::Tensor a;  // [B, n, n]
  at::Tensor b;  // [B, n]

  static Quadratic random(int64_t batch, int64_t n, uint64_t seed, at::ScalarType dtype = at::kDouble) {
    at::Generator gen = make_generator(seed);
    const auto opts = at::TensorOptions().dtype(at::kDouble);
    const at::Tensor m = at::randn({batch, n, n}, gen, opts);
    Quadratic q;
    q.a = (at::eye(n, opts).expand({batch, n, n}) + at::matmul(m, m.transpose(1, 2)) / (2.0 * n)).to(dtype);
    q.b = at::randn({batch, n}, gen, opts).to(dtype);
    return q;
  }
  at::Tensor grad(const at::Tensor& theta) const {
    return at::matmul(a, theta.unsqueeze(-1)).squeeze(-1) - b;
  }
  at::Tensor loss(const at::Tensor& theta) const {
    return 0.5 * (theta * at::matmul(a, theta.unsqueeze(-1)).squeeze(-1)).sum(1) - (b * theta).sum(1);
  }
  at::Tensor min_loss() const {
    const at::Tensor opt = at::linalg_solve(a, b.unsqueeze(-1)).squeeze(-1);
    return loss(opt);
  }
  Quadratic slice(int64_t i) const { return {a.narrow(0, i, 1), b.narrow(0, i, 1)}; }
};

// Runs `steps` updates of `opt` on `q` from θ0 and returns the final θ; *gaps, when given, receives the loss gap
// F − F* ([B]) after each step. Optimizers are handed the gap as their loss (the same gradient, and positive, as
// ECDSep with F0 = 0 needs).
inline at::Tensor run_quadratic(const optim::Optimizer& opt, const Quadratic& q, const at::Tensor& theta0,
                                int64_t steps, std::vector<at::Tensor>* gaps = nullptr) {
  at::Tensor theta = theta0;
  optim::OptimizerState state = opt.init({theta});
  const at::Tensor fmin = q.min_loss();
  for (int64_t t = 0; t < steps; ++t) {
    auto r = opt.update({theta}, {q.grad(theta)}, q.loss(theta) - fmin, state);
    theta = r.params[0];
    state = std::move(r.state);
    if (gaps) gaps->push_back(q.loss(theta) - fmin);
  }
  return theta;
}

}  // namespace hamlet::test
