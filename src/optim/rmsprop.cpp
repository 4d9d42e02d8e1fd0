#include "hamlet/optim/rmsprop.hpp"

#include "common.hpp"
#include "hamlet/core/error.hpp"

namespace hamlet::optim {

void RmsPropOptions::validate() const {
  check_positive("rmsprop.lr", lr);
  check_in_range("rmsprop.alpha", alpha, 0.0, 1.0);
  check_non_negative("rmsprop.eps", eps);
}

OptionMap RmsPropOptions::to_map() const {
  return {{"lr", format_number(lr)}, {"alpha", format_number(alpha)}, {"eps", format_number(eps)}};
}

RmsPropOptions RmsPropOptions::from_map(OptionMap options) {
  RmsPropOptions o;
  take_option(options, "rmsprop", "lr", o.lr);
  take_option(options, "rmsprop", "alpha", o.alpha);
  take_option(options, "rmsprop", "eps", o.eps);
  reject_unknown_options(options, "rmsprop", {"lr", "alpha", "eps"});
  o.validate();
  return o;
}

RmsProp::RmsProp(RmsPropOptions options) : options_(options) { options_.validate(); }

OptimizerState RmsProp::init(const TensorList& params) const {
  OptimizerState s;
  s.slots["square_avg"] = detail::zeros_like_all(params);
  return s;
}

StepResult RmsProp::update(const TensorList& params, const TensorList& grads, const at::Tensor& loss,
                           const OptimizerState& state) const {
  detail::check_update_args(name(), params, grads);
  const TensorList& v = detail::slot(name(), state, "square_avg", params.size());
  StepResult r;
  r.state = state;
  TensorList next_v;
  for (std::size_t i = 0; i < params.size(); ++i) {
    if (!grads[i].defined()) {
      r.params.push_back(params[i]);
      next_v.push_back(v[i]);
      continue;
    }
    const at::Tensor& g = grads[i];
    const at::Tensor vi = options_.alpha * v[i] + (1.0 - options_.alpha) * (g * g);
    r.params.push_back(params[i] - options_.lr * (g / (vi.sqrt() + options_.eps)));
    next_v.push_back(vi);
  }
  r.state.slots["square_avg"] = std::move(next_v);
  ++r.state.step;
  return r;
}

}  // namespace hamlet::optim
