#include "hamlet/optim/symplectic_euler.hpp"

#include <cmath>

#include "common.hpp"
#include "hamlet/core/error.hpp"

namespace hamlet::optim {

void SymplecticEulerOptions::validate() const {
  check_positive("symplectic-euler.lr", lr);
  // μ = 0 would discard the momentum entirely (plain SGD with lr η²); the method needs some memory.
  HAMLET_CHECK(std::isfinite(friction) && friction > 0.0 && friction <= 1.0,
               "symplectic-euler.friction must be in (0, 1], got ", format_number(friction));
}

OptionMap SymplecticEulerOptions::to_map() const {
  return {{"lr", format_number(lr)}, {"friction", format_number(friction)}};
}

SymplecticEulerOptions SymplecticEulerOptions::from_map(OptionMap options) {
  SymplecticEulerOptions o;
  take_option(options, "symplectic-euler", "lr", o.lr);
  take_option(options, "symplectic-euler", "friction", o.friction);
  reject_unknown_options(options, "symplectic-euler", {"lr", "friction"});
  o.validate();
  return o;
}

SymplecticEuler::SymplecticEuler(SymplecticEulerOptions options) : options_(options) { options_.validate(); }

OptimizerState SymplecticEuler::init(const TensorList& params) const {
  OptimizerState s;
  s.slots["p"] = detail::zeros_like_all(params);
  return s;
}

StepResult SymplecticEuler::update(const TensorList& params, const TensorList& grads, const at::Tensor& loss,
                                   const OptimizerState& state) const {
  detail::check_update_args(name(), params, grads);
  const TensorList& m = detail::slot(name(), state, "p", params.size());
  StepResult r;
  r.state = state;
  if (loss.defined()) {
    // The energy pairs θ_t with m_t (both before the step); the loss handed in is L(θ_t).
    const int64_t b = detail::batch_size(name(), params);
    HAMLET_CHECK(loss.dim() == 1 && loss.size(0) == b, name(), ": loss must be [B] = [", b, "], got ",
                 loss.sizes());
    r.diagnostics["energy"] = 0.5 * detail::sum_sq_where_defined(m, grads, loss) + loss;
  }
  TensorList next_m;
  for (std::size_t i = 0; i < params.size(); ++i) {
    if (!grads[i].defined()) {
      r.params.push_back(params[i]);
      next_m.push_back(m[i]);
      continue;
    }
    const at::Tensor mi = options_.friction * m[i] - options_.lr * grads[i];
    r.params.push_back(params[i] + options_.lr * mi);
    next_m.push_back(mi);
  }
  r.state.slots["p"] = std::move(next_m);
  ++r.state.step;
  return r;
}

}  // namespace hamlet::optim
