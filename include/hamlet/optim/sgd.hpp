#pragma once
// Plain stochastic gradient descent, "sgd":
//
//   θ ← θ − lr·g
//
// PyTorch convention (torch.optim.SGD / torch::optim::SGD with momentum 0); docs/methods.md §6.1.
// Elementwise: parameters may have any shape (the [B, ...] problem layout is not required) and the state is empty
// apart from the step counter. Works in the parameters' dtype and on their device; never modifies its inputs.
#include "hamlet/core/option_spec.hpp"
#include "hamlet/optim/elementwise.hpp"

namespace hamlet::optim {

struct SgdOptions {
  double lr = 0.01;  // learning rate, > 0
  HAMLET_OPTIONS(SgdOptions);
};

class Sgd final : public ElementwiseOptimizer<SgdOptions> {
 public:
  explicit Sgd(SgdOptions options = {}) : ElementwiseOptimizer(std::move(options), {}) {}

 protected:
  at::Tensor step(const at::Tensor& param, const at::Tensor& grad, TensorList& buffers) const override;
};

}  // namespace hamlet::optim
