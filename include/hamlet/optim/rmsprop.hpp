#pragma once
// RMSprop, "rmsprop" (Tieleman & Hinton, 2012), PyTorch form without momentum and not centred
// (torch.optim.RMSprop / torch::optim::RMSprop defaults):
//
//   v ← α·v + (1−α)·g²
//   θ ← θ − lr·g / (√v + eps)
//
// docs/methods.md §6.1. State: slot "square_avg" (v). Elementwise: any parameter shape works.
#include "hamlet/core/option_spec.hpp"
#include "hamlet/optim/elementwise.hpp"

namespace hamlet::optim {

struct RmsPropOptions {
  double lr = 0.01;     // learning rate, > 0
  double alpha = 0.99;  // smoothing constant, in [0, 1)
  double eps = 1e-8;    // >= 0, added to √v
  HAMLET_OPTIONS(RmsPropOptions);
};

class RmsProp final : public ElementwiseOptimizer<RmsPropOptions> {
 public:
  explicit RmsProp(RmsPropOptions options = {}) : ElementwiseOptimizer(std::move(options), {"square_avg"}) {}

 protected:
  at::Tensor step(const at::Tensor& param, const at::Tensor& grad, TensorList& buffers) const override;
};

}  // namespace hamlet::optim
