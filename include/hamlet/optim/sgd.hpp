#pragma once
// Plain stochastic gradient descent, "sgd":
//
//   θ ← θ − lr·g
//
// PyTorch convention (torch.optim.SGD / torch::optim::SGD with momentum 0); docs/methods.md §6.1.
// Elementwise: parameters may have any shape (the [B, ...] problem layout is not required) and the state is empty
// apart from the step counter. Works in the parameters' dtype and on their device; never modifies its inputs.
#include "hamlet/core/option_spec.hpp"
#include "hamlet/optim/optimizer.hpp"

namespace hamlet::optim {

struct SgdOptions {
  double lr = 0.01;  // learning rate, > 0
  HAMLET_OPTIONS(SgdOptions);
};

class Sgd final : public ConfiguredOptimizer<SgdOptions> {
 public:
  using ConfiguredOptimizer::ConfiguredOptimizer;
  OptimizerState init(const TensorList& params) const override;
  // Undefined gradients leave their parameter unchanged; `loss` is ignored.
  StepResult update(const TensorList& params, const TensorList& grads, const at::Tensor& loss,
                    const OptimizerState& state) const override;
};

}  // namespace hamlet::optim
