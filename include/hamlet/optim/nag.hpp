#pragma once
// Nesterov accelerated gradient, "nag", in the PyTorch nesterov=True form:
//
//   b ← μ·b + g          (b starts at 0; dampening 0)
//   θ ← θ − lr·(g + μ·b)
//
// Identical to torch.optim.SGD(momentum=μ, nesterov=True) / torch::optim::SGD; docs/methods.md §6.1 (the L2L
// baselines used Torch7's `nag`, whose default momentum is 0.9).
// State: slot "momentum_buffer". Elementwise: any parameter shape works.
#include "hamlet/core/option_spec.hpp"
#include "hamlet/optim/optimizer.hpp"

namespace hamlet::optim {

struct NagOptions {
  double lr = 0.01;       // learning rate, > 0
  double momentum = 0.9;  // μ, in [0, 1]
  HAMLET_OPTIONS(NagOptions);
};

HAMLET_HAND_DESIGNED_OPTIMIZER(Nag, NagOptions);

}  // namespace hamlet::optim
