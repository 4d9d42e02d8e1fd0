#include "hamlet/optim/sgd.hpp"

#include "common.hpp"
#include "hamlet/core/error.hpp"

namespace hamlet::optim {

void SgdOptions::validate() const { check_positive("sgd.lr", lr); }

OptionMap SgdOptions::to_map() const { return {{"lr", format_number(lr)}}; }

SgdOptions SgdOptions::from_map(OptionMap options) {
  SgdOptions o;
  take_option(options, "sgd", "lr", o.lr);
  reject_unknown_options(options, "sgd", {"lr"});
  o.validate();
  return o;
}

Sgd::Sgd(SgdOptions options) : options_(options) { options_.validate(); }

OptimizerState Sgd::init(const TensorList& params) const { return {}; }

StepResult Sgd::update(const TensorList& params, const TensorList& grads, const at::Tensor& loss,
                       const OptimizerState& state) const {
  detail::check_update_args(name(), params, grads);
  StepResult r;
  r.params.reserve(params.size());
  for (std::size_t i = 0; i < params.size(); ++i) {
    r.params.push_back(grads[i].defined() ? params[i] - options_.lr * grads[i] : params[i]);
  }
  r.state = state;
  ++r.state.step;
  return r;
}

}  // namespace hamlet::optim
