#include "hamlet/optim/sgd.hpp"

#include "common.hpp"
#include "hamlet/core/error.hpp"

namespace hamlet::optim {

const OptionSpec<SgdOptions>& SgdOptions::spec() {
  static const auto s = OptionSpec<SgdOptions>("sgd").add("lr", &SgdOptions::lr, "learning rate", checks::positive);
  return s;
}

OptimizerState Sgd::init(const TensorList& params) const { return {}; }

StepResult Sgd::update(const TensorList& params, const TensorList& grads, const at::Tensor& loss,
                       const OptimizerState& state) const {
  return detail::per_parameter_update(name(), params, grads, state, {},
                                      [&](std::size_t, const at::Tensor& p, const at::Tensor& g, TensorList&) {
                                        return p - options_.lr * g;
                                      });
}

}  // namespace hamlet::optim
