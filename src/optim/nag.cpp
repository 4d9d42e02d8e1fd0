#include "hamlet/optim/nag.hpp"

#include "common.hpp"
#include "hamlet/core/error.hpp"

namespace hamlet::optim {

void NagOptions::validate() const {
  check_positive("nag.lr", lr);
  check_in_range("nag.momentum", momentum, 0.0, 1.0, /*hi_inclusive=*/true);
}

OptionMap NagOptions::to_map() const { return {{"lr", format_number(lr)}, {"momentum", format_number(momentum)}}; }

NagOptions NagOptions::from_map(OptionMap options) {
  NagOptions o;
  take_option(options, "nag", "lr", o.lr);
  take_option(options, "nag", "momentum", o.momentum);
  reject_unknown_options(options, "nag", {"lr", "momentum"});
  o.validate();
  return o;
}

Nag::Nag(NagOptions options) : options_(options) { options_.validate(); }

OptimizerState Nag::init(const TensorList& params) const {
  OptimizerState s;
  s.slots["momentum_buffer"] = detail::zeros_like_all(params);
  return s;
}

StepResult Nag::update(const TensorList& params, const TensorList& grads, const at::Tensor& loss,
                       const OptimizerState& state) const {
  detail::check_update_args(name(), params, grads);
  const TensorList& buf = detail::slot(name(), state, "momentum_buffer", params.size());
  StepResult r;
  r.state = state;
  TensorList next_buf;
  for (std::size_t i = 0; i < params.size(); ++i) {
    if (!grads[i].defined()) {
      r.params.push_back(params[i]);
      next_buf.push_back(buf[i]);
      continue;
    }
    const at::Tensor b = options_.momentum * buf[i] + grads[i];
    r.params.push_back(params[i] - options_.lr * (grads[i] + options_.momentum * b));
    next_buf.push_back(b);
  }
  r.state.slots["momentum_buffer"] = std::move(next_buf);
  ++r.state.step;
  return r;
}

}  // namespace hamlet::optim
