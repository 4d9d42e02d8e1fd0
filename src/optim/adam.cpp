#include "hamlet/optim/adam.hpp"

#include <cmath>

#include "common.hpp"
#include "hamlet/core/error.hpp"

namespace hamlet::optim {

void AdamOptions::validate() const {
  check_positive("adam.lr", lr);
  check_in_range("adam.beta1", beta1, 0.0, 1.0);
  check_in_range("adam.beta2", beta2, 0.0, 1.0);
  check_non_negative("adam.eps", eps);
}

OptionMap AdamOptions::to_map() const {
  return {{"lr", format_number(lr)},
          {"beta1", format_number(beta1)},
          {"beta2", format_number(beta2)},
          {"eps", format_number(eps)}};
}

AdamOptions AdamOptions::from_map(OptionMap options) {
  AdamOptions o;
  take_option(options, "adam", "lr", o.lr);
  take_option(options, "adam", "beta1", o.beta1);
  take_option(options, "adam", "beta2", o.beta2);
  take_option(options, "adam", "eps", o.eps);
  reject_unknown_options(options, "adam", {"lr", "beta1", "beta2", "eps"});
  o.validate();
  return o;
}

Adam::Adam(AdamOptions options) : options_(options) { options_.validate(); }

OptimizerState Adam::init(const TensorList& params) const {
  OptimizerState s;
  s.slots["exp_avg"] = detail::zeros_like_all(params);
  s.slots["exp_avg_sq"] = detail::zeros_like_all(params);
  return s;
}

StepResult Adam::update(const TensorList& params, const TensorList& grads, const at::Tensor& loss,
                        const OptimizerState& state) const {
  detail::check_update_args(name(), params, grads);
  const TensorList& m = detail::slot(name(), state, "exp_avg", params.size());
  const TensorList& v = detail::slot(name(), state, "exp_avg_sq", params.size());
  const int64_t t = state.step + 1;
  // Bias corrections are host scalars (the step count is known on the host): no device sync, and the same
  // arithmetic order as torch::optim::Adam so trajectories agree to rounding.
  const double bias1 = 1.0 - std::pow(options_.beta1, static_cast<double>(t));
  const double bias2_sqrt = std::sqrt(1.0 - std::pow(options_.beta2, static_cast<double>(t)));
  const double step_size = options_.lr / bias1;

  StepResult r;
  r.state = state;
  TensorList next_m, next_v;
  for (std::size_t i = 0; i < params.size(); ++i) {
    if (!grads[i].defined()) {
      r.params.push_back(params[i]);
      next_m.push_back(m[i]);
      next_v.push_back(v[i]);
      continue;
    }
    const at::Tensor& g = grads[i];
    const at::Tensor mi = options_.beta1 * m[i] + (1.0 - options_.beta1) * g;
    const at::Tensor vi = options_.beta2 * v[i] + (1.0 - options_.beta2) * (g * g);
    const at::Tensor denom = vi.sqrt() / bias2_sqrt + options_.eps;
    r.params.push_back(params[i] - step_size * (mi / denom));
    next_m.push_back(mi);
    next_v.push_back(vi);
  }
  r.state.slots["exp_avg"] = std::move(next_m);
  r.state.slots["exp_avg_sq"] = std::move(next_v);
  r.state.step = t;
  return r;
}

}  // namespace hamlet::optim
