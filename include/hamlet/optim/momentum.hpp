#pragma once
// Heavy-ball momentum SGD, "momentum" (the "SGD" column of the OPT-ML/L2L tables is this method):
//
//   b ← μ·b + g          (b starts at 0, so b = g at the first step; dampening 0)
//   θ ← θ − lr·b
//
// PyTorch convention: torch.optim.SGD(momentum=μ), identical to torch::optim::SGD; docs/methods.md §6.1, §6.2.
// μ = 1 gives the undamped form that Javihaus/hamiltonian_ai's symplectic Euler reduces to (docs/methods.md §7.1).
// State: slot "momentum_buffer" (one tensor per parameter, same shape). Elementwise: any parameter shape works.
#include "hamlet/core/option_spec.hpp"
#include "hamlet/optim/elementwise.hpp"

namespace hamlet::optim {

struct MomentumOptions {
  double lr = 0.01;        // learning rate, > 0
  double momentum = 0.9;   // μ, in [0, 1]
  HAMLET_OPTIONS(MomentumOptions);
};

class Momentum final : public ElementwiseOptimizer<MomentumOptions> {
 public:
  explicit Momentum(MomentumOptions options = {}) : ElementwiseOptimizer(std::move(options), {"momentum_buffer"}) {}

 protected:
  at::Tensor step(const at::Tensor& param, const at::Tensor& grad, TensorList& buffers) const override;
};

}  // namespace hamlet::optim
