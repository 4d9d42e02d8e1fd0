#include "hamlet/optim/momentum.hpp"

#include "common.hpp"
#include "hamlet/core/error.hpp"

namespace hamlet::optim {

void MomentumOptions::validate() const {
  check_positive("momentum.lr", lr);
  // μ = 1 is allowed: it is the frictionless heavy ball of METHODS.md §7.1.
  check_in_range("momentum.momentum", momentum, 0.0, 1.0, /*hi_inclusive=*/true);
}

OptionMap MomentumOptions::to_map() const {
  return {{"lr", format_number(lr)}, {"momentum", format_number(momentum)}};
}

MomentumOptions MomentumOptions::from_map(OptionMap options) {
  MomentumOptions o;
  take_option(options, "momentum", "lr", o.lr);
  take_option(options, "momentum", "momentum", o.momentum);
  reject_unknown_options(options, "momentum", {"lr", "momentum"});
  o.validate();
  return o;
}

Momentum::Momentum(MomentumOptions options) : options_(options) { options_.validate(); }

OptimizerState Momentum::init(const TensorList& params) const {
  OptimizerState s;
  s.slots["momentum_buffer"] = detail::zeros_like_all(params);
  return s;
}

StepResult Momentum::update(const TensorList& params, const TensorList& grads, const at::Tensor& loss,
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
    // With the buffer starting at zero, μ·0 + g reproduces PyTorch's "b = g at the first step" exactly.
    const at::Tensor b = options_.momentum * buf[i] + grads[i];
    r.params.push_back(params[i] - options_.lr * b);
    next_buf.push_back(b);
  }
  r.state.slots["momentum_buffer"] = std::move(next_buf);
  ++r.state.step;
  return r;
}

}  // namespace hamlet::optim
