#include "hamlet/optim/nag.hpp"

#include "common.hpp"
#include "hamlet/core/error.hpp"

namespace hamlet::optim {

const OptionSpec<NagOptions>& NagOptions::spec() {
  static const auto s = OptionSpec<NagOptions>("nag")
                            .add("lr", &NagOptions::lr, "learning rate", checks::positive)
                            .add("momentum", &NagOptions::momentum, "Nesterov coefficient mu in [0, 1]",
                                 checks::in_range(0, 1, /*hi_inclusive=*/true));
  return s;
}

OptimizerState Nag::init(const TensorList& params) const { return detail::zero_slots(params, {"momentum_buffer"}); }

StepResult Nag::update(const TensorList& params, const TensorList& grads, const at::Tensor& loss,
                       const OptimizerState& state) const {
  return detail::per_parameter_update(name(), params, grads, state, {"momentum_buffer"},
                                      [&](std::size_t, const at::Tensor& p, const at::Tensor& g, TensorList& buf) {
                                        buf[0] = options_.momentum * buf[0] + g;
                                        return p - options_.lr * (g + options_.momentum * buf[0]);
                                      });
}

}  // namespace hamlet::optim
