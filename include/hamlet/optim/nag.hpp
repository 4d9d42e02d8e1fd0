#pragma once
// Nesterov accelerated gradient, "nag", in the PyTorch nesterov=True form:
//
//   b ← μ·b + g          (b starts at 0; dampening 0)
//   θ ← θ − lr·(g + μ·b)
//
// Identical to torch.optim.SGD(momentum=μ, nesterov=True) / torch::optim::SGD; docs/methods.md §6.1 (the L2L
// baselines used Torch7's `nag`, whose default momentum is 0.9).
// State: slot "momentum_buffer". Elementwise: any parameter shape works.
#include "hamlet/optim/momentum.hpp"

namespace hamlet::optim {

// The options of momentum (lr, momentum μ), spelled there once; only the update differs.
struct NagOptions : MomentumOptions {
  HAMLET_OPTIONS(NagOptions);
};

class Nag final : public ElementwiseOptimizer<NagOptions> {
 public:
  explicit Nag(NagOptions options = {}) : ElementwiseOptimizer(std::move(options), {"momentum_buffer"}) {}

 protected:
  at::Tensor step(const at::Tensor& param, const at::Tensor& grad, TensorList& buffers) const override;
};

}  // namespace hamlet::optim
