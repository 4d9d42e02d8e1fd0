#pragma once
// Adam, "adam" (Kingma & Ba, ICLR 2015), with PyTorch's bias correction (torch.optim.Adam / torch::optim::Adam,
// no weight decay, no amsgrad):
//
//   m ← β1·m + (1−β1)·g;   v ← β2·v + (1−β2)·g²;   t = state.step + 1
//   θ ← θ − (lr/(1−β1ᵗ))·m / (√v/√(1−β2ᵗ) + eps)
//
// docs/methods.md §6.1. State: slots "exp_avg" (m) and "exp_avg_sq" (v); t is OptimizerState::step.
// Elementwise: any parameter shape works (meta-training uses it on optimizer weights without a problem dim).
#include "hamlet/core/option_spec.hpp"
#include "hamlet/optim/optimizer.hpp"

namespace hamlet::optim {

struct AdamOptions {
  double lr = 1e-3;     // learning rate, > 0
  double beta1 = 0.9;   // in [0, 1)
  double beta2 = 0.999; // in [0, 1)
  double eps = 1e-8;    // >= 0, added to the bias-corrected √v
  HAMLET_OPTIONS(AdamOptions);
};

HAMLET_HAND_DESIGNED_OPTIMIZER(Adam, AdamOptions);

}  // namespace hamlet::optim
