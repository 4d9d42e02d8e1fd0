#pragma once
// Adam, "adam" (Kingma & Ba, ICLR 2015), with PyTorch's bias correction (torch.optim.Adam / torch::optim::Adam,
// no weight decay, no amsgrad):
//
//   m ← β1·m + (1−β1)·g;   v ← β2·v + (1−β2)·g²;   t = state.step + 1
//   θ ← θ − (lr/(1−β1ᵗ))·m / (√v/√(1−β2ᵗ) + eps)
//
// METHODS.md §6.1. State: slots "exp_avg" (m) and "exp_avg_sq" (v); t is OptimizerState::step.
// Elementwise: any parameter shape works (meta-training uses it on optimizer weights without a problem dim).
#include "hamlet/optim/optimizer.hpp"

namespace hamlet::optim {

struct AdamOptions {
  double lr = 1e-3;     // learning rate, > 0
  double beta1 = 0.9;   // in [0, 1)
  double beta2 = 0.999; // in [0, 1)
  double eps = 1e-8;    // >= 0, added to the bias-corrected √v

  void validate() const;
  // Keys: lr, beta1, beta2, eps.
  OptionMap to_map() const;
  static AdamOptions from_map(OptionMap options);
};

class Adam final : public Optimizer {
 public:
  explicit Adam(AdamOptions options = {});
  const AdamOptions& config() const { return options_; }

  std::string name() const override { return "adam"; }
  OptionMap options() const override { return options_.to_map(); }
  double learning_rate() const override { return options_.lr; }
  OptimizerState init(const TensorList& params) const override;
  StepResult update(const TensorList& params, const TensorList& grads, const at::Tensor& loss,
                    const OptimizerState& state) const override;

 private:
  AdamOptions options_;
};

}  // namespace hamlet::optim
