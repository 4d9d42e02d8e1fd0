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

HAMLET_HAND_DESIGNED_OPTIMIZER(Sgd, SgdOptions);

}  // namespace hamlet::optim
