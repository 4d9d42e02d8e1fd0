#pragma once
// Random quadratic task (Andrychowicz et al. 2016 §3.1; AfoninAndrei/OPT-ML src/loss.py, src/optimizee.py).
//
//   F(θ) = ‖Wθ − y‖²   (a sum of squares: no ½, no scaling),   ∇F(θ) = 2 Wᵀ(Wθ − y)
//
// W ∈ R^{n×n} and y ∈ R^n have i.i.d. N(0, 1) entries drawn from the problem's own seed; θ0 = 0, so
// F(θ0) = ‖y‖² (expectation n). Batched: W [B, n, n], y [B, n], θ [B, n]; the single parameter tensor is
// named "theta". Minimum 0 at θ* = W⁻¹y (least squares), available for tests.
//
// Options: dim (n, default 10), dtype ("float32" | "float64", default float32).
#include "hamlet/core/option_spec.hpp"
#include "hamlet/tasks/task.hpp"

namespace hamlet::tasks {

struct QuadraticOptions {
  int64_t dim = 10;
  std::string dtype = "float32";
  HAMLET_OPTIONS(QuadraticOptions);
};

class QuadraticBatch final : public ProblemBatch {
 public:
  // w: [B, n, n], y: [B, n].
  QuadraticBatch(at::Tensor w, at::Tensor y);
  int64_t size() const override { return w_.size(0); }
  TensorList initial_params() const override;
  at::Tensor loss(const TensorList& params, int64_t step) const override;
  std::vector<std::string> param_names() const override { return {"theta"}; }
  const at::Tensor& w() const { return w_; }
  const at::Tensor& y() const { return y_; }
  // Least-squares minimiser θ* per problem, [B, n].
  at::Tensor optimum() const;

 private:
  at::Tensor w_, y_;
};

class QuadraticTask final : public Task {
 public:
  explicit QuadraticTask(QuadraticOptions options = {});
  std::string name() const override { return "quadratic"; }
  OptionMap options() const override { return options_.to_map(); }
  int64_t data_bytes_per_problem() const override;
  std::unique_ptr<ProblemBatch> sample(Split split, uint64_t seed, int64_t first, int64_t count,
                                       c10::Device device) const override;

 private:
  QuadraticOptions options_;
};

}  // namespace hamlet::tasks
