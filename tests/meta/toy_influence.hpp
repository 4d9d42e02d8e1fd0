#pragma once
// The known-answer toy of docs/methods.md §10.7(b) (values from a float64 numpy program) as a hamlet task and
// learned optimizer, in float64: state θ = (u, v) [B, 2], θ0 = 0, loss ℓ = ½(u − 1)² before each update, and
// the "optimizer" u ← ½u + ½v + φ, v ← ½v − 3φ with one weight φ (it ignores the gradient). The loss is
// quadratic in the perturbations of φ, so ES / PES means equal the exact derivatives for any σ.
#include <ATen/ATen.h>

#include "hamlet/learned/learned_optimizer.hpp"
#include "hamlet/tasks/task.hpp"

namespace hamlet::test {

class ToyBatch final : public tasks::ProblemBatch {
 public:
  explicit ToyBatch(int64_t b) : b_(b) {}
  int64_t size() const override { return b_; }
  TensorList initial_params() const override { return {at::zeros({b_, 2}, at::kDouble)}; }
  at::Tensor loss(const TensorList& p, int64_t) const override {
    return 0.5 * (p[0].select(1, 0) - 1.0).pow(2);
  }
  std::vector<std::string> param_names() const override { return {"theta"}; }

 private:
  int64_t b_;
};

class ToyTask final : public tasks::Task {
 public:
  std::string name() const override { return "toy-influence"; }
  OptionMap options() const override { return {}; }
  std::unique_ptr<tasks::ProblemBatch> sample(tasks::Split, uint64_t, int64_t, int64_t count,
                                              c10::Device) const override {
    return std::make_unique<ToyBatch>(count);
  }
};

class ToyOptimizer final : public learned::LearnedOptimizer {
 public:
  explicit ToyOptimizer(double phi = 0.1) : phi_(at::full({1}, phi, at::kDouble)) {}
  std::string name() const override { return "toy"; }
  OptionMap options() const override { return {}; }
  double learning_rate() const override { return 1.0; }
  optim::OptimizerState init(const TensorList&) const override { return {}; }
  optim::StepResult update(const TensorList& params, const TensorList&, const at::Tensor&,
                           const optim::OptimizerState& state) const override {
    const at::Tensor u = params[0].select(1, 0), v = params[0].select(1, 1);
    optim::StepResult r;
    r.params = {at::stack({0.5 * u + 0.5 * v + phi_, 0.5 * v - 3.0 * phi_}, 1)};
    r.state = state;
    return r;
  }
  TensorList weights() const override { return {phi_}; }
  std::vector<std::string> weight_names() const override { return {"phi"}; }
  void set_weights(const TensorList& w) override { phi_ = w.at(0).to(at::kDouble); }
  std::string architecture() const override { return "toy"; }

 private:
  at::Tensor phi_;
};

}  // namespace hamlet::test
