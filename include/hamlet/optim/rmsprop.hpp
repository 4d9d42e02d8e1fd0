#pragma once
// RMSprop, "rmsprop" (Tieleman & Hinton, 2012), PyTorch form without momentum and not centred
// (torch.optim.RMSprop / torch::optim::RMSprop defaults):
//
//   v ← α·v + (1−α)·g²
//   θ ← θ − lr·g / (√v + eps)
//
// METHODS.md §6.1. State: slot "square_avg" (v). Elementwise: any parameter shape works.
#include "hamlet/optim/optimizer.hpp"

namespace hamlet::optim {

struct RmsPropOptions {
  double lr = 0.01;     // learning rate, > 0
  double alpha = 0.99;  // smoothing constant, in [0, 1)
  double eps = 1e-8;    // >= 0, added to √v

  void validate() const;
  // Keys: lr, alpha, eps.
  OptionMap to_map() const;
  static RmsPropOptions from_map(OptionMap options);
};

class RmsProp final : public Optimizer {
 public:
  explicit RmsProp(RmsPropOptions options = {});
  const RmsPropOptions& config() const { return options_; }

  std::string name() const override { return "rmsprop"; }
  OptionMap options() const override { return options_.to_map(); }
  double learning_rate() const override { return options_.lr; }
  OptimizerState init(const TensorList& params) const override;
  StepResult update(const TensorList& params, const TensorList& grads, const at::Tensor& loss,
                    const OptimizerState& state) const override;

 private:
  RmsPropOptions options_;
};

}  // namespace hamlet::optim
