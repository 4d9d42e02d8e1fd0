#include "hamlet/optim/momentum.hpp"

#include "common.hpp"
#include "hamlet/core/error.hpp"

namespace hamlet::optim {

// μ = 1 is allowed: it is the frictionless heavy ball of docs/methods.md §7.1.
const OptionSpec<MomentumOptions>& MomentumOptions::spec() {
  static const auto s = OptionSpec<MomentumOptions>("momentum")
                            .add("lr", &MomentumOptions::lr, "learning rate", checks::positive)
                            .add("momentum", &MomentumOptions::momentum, "heavy-ball coefficient mu in [0, 1]",
                                 checks::in_range(0, 1, /*hi_inclusive=*/true));
  return s;
}

OptimizerState Momentum::init(const TensorList& params) const {
  return detail::zero_slots(params, {"momentum_buffer"});
}

StepResult Momentum::update(const TensorList& params, const TensorList& grads, const at::Tensor& loss,
                            const OptimizerState& state) const {
  return detail::per_parameter_update(
      name(), params, grads, state, {"momentum_buffer"},
      [&](std::size_t, const at::Tensor& p, const at::Tensor& g, TensorList& buf) {
        // With the buffer starting at zero, μ·0 + g reproduces PyTorch's "b = g at the first step" exactly.
        buf[0] = options_.momentum * buf[0] + g;
        return p - options_.lr * buf[0];
      });
}

}  // namespace hamlet::optim
