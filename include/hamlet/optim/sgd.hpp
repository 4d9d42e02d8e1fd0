#pragma once
// Plain stochastic gradient descent, "sgd":
//
//   θ ← θ − lr·g
//
// PyTorch convention (torch.optim.SGD / torch::optim::SGD with momentum 0); METHODS.md §6.1.
// Elementwise: parameters may have any shape (the [B, ...] problem layout is not required) and the state is empty
// apart from the step counter. Works in the parameters' dtype and on their device; never modifies its inputs.
#include "hamlet/optim/optimizer.hpp"

namespace hamlet::optim {

struct SgdOptions {
  double lr = 0.01;  // learning rate, > 0

  // Throws hamlet::Error naming the field and value ("sgd.lr must be ...").
  void validate() const;
  // Keys: lr.
  OptionMap to_map() const;
  // Takes the known keys, rejects unknown ones (listing the valid keys), validates.
  static SgdOptions from_map(OptionMap options);
};

class Sgd final : public Optimizer {
 public:
  explicit Sgd(SgdOptions options = {});
  const SgdOptions& config() const { return options_; }

  std::string name() const override { return "sgd"; }
  OptionMap options() const override { return options_.to_map(); }
  double learning_rate() const override { return options_.lr; }
  OptimizerState init(const TensorList& params) const override;
  // Undefined gradients leave their parameter unchanged; `loss` is ignored.
  StepResult update(const TensorList& params, const TensorList& grads, const at::Tensor& loss,
                    const OptimizerState& state) const override;

 private:
  SgdOptions options_;
};

}  // namespace hamlet::optim
