#include "hamlet/optim/symplectic.hpp"

#include "common.hpp"
#include "hamlet/core/error.hpp"

namespace hamlet::optim {

void SymplecticOptions::validate() const {
  check_positive("symplectic.lr", lr);
  check_in_range("symplectic.beta", beta, 0.0, 1.0);
  check_positive("symplectic.epsilon", epsilon);
}

OptionMap SymplecticOptions::to_map() const {
  return {{"lr", format_number(lr)}, {"beta", format_number(beta)}, {"epsilon", format_number(epsilon)}};
}

SymplecticOptions SymplecticOptions::from_map(OptionMap options) {
  SymplecticOptions o;
  take_option(options, "symplectic", "lr", o.lr);
  take_option(options, "symplectic", "beta", o.beta);
  take_option(options, "symplectic", "epsilon", o.epsilon);
  reject_unknown_options(options, "symplectic", {"lr", "beta", "epsilon"});
  o.validate();
  return o;
}

AdvancedSymplectic::AdvancedSymplectic(SymplecticOptions options) : options_(options) { options_.validate(); }

OptimizerState AdvancedSymplectic::init(const TensorList& params) const {
  OptimizerState s;
  s.slots["p"] = detail::zeros_like_all(params);
  return s;
}

StepResult AdvancedSymplectic::update(const TensorList& params, const TensorList& grads, const at::Tensor& loss,
                                      const OptimizerState& state) const {
  detail::check_update_args(name(), params, grads);
  const TensorList& m = detail::slot(name(), state, "p", params.size());
  StepResult r;
  r.state = state;
  TensorList next_m;
  at::Tensor energy;
  for (std::size_t i = 0; i < params.size(); ++i) {
    if (!grads[i].defined()) {
      r.params.push_back(params[i]);
      next_m.push_back(m[i]);
      continue;
    }
    HAMLET_CHECK(params[i].dim() >= 1, name(), ": parameter ", i, " needs a leading problem dimension [B, ...]");
    const at::Tensor mi = options_.beta * m[i] + (1.0 - options_.beta) * grads[i];
    // The original reduces over the whole tensor; here each problem's slice of the tensor is one such tensor.
    const at::Tensor h = 0.5 * (per_problem_sum_sq(mi) + per_problem_sum_sq(grads[i]));
    const at::Tensor alpha = options_.lr / (h.sqrt() + options_.epsilon);
    r.params.push_back(params[i] - detail::per_problem(alpha, mi) * mi);
    next_m.push_back(mi);
    energy = energy.defined() ? energy + h : h;
  }
  if (energy.defined()) r.diagnostics["energy"] = energy;
  r.state.slots["p"] = std::move(next_m);
  ++r.state.step;
  return r;
}

}  // namespace hamlet::optim
