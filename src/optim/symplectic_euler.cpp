#include "hamlet/optim/symplectic_euler.hpp"

#include <cmath>

#include "common.hpp"
#include "hamlet/core/error.hpp"

namespace hamlet::optim {

// μ = 0 would discard the momentum entirely (plain SGD with lr η²); the method needs some memory.
const OptionSpec<SymplecticEulerOptions>& SymplecticEulerOptions::spec() {
  static const auto s =
      OptionSpec<SymplecticEulerOptions>("symplectic-euler")
          .add("lr", &SymplecticEulerOptions::lr, "step eta (equivalent heavy-ball learning rate eta^2)",
               checks::positive)
          .add("friction", &SymplecticEulerOptions::friction, "momentum kept per step mu in (0, 1]",
               [](const std::string& field, double friction) {
                 HAMLET_CHECK(std::isfinite(friction) && friction > 0.0 && friction <= 1.0, field,
                              " must be in (0, 1], got ", format_number(friction));
               });
  return s;
}

OptimizerState SymplecticEuler::init(const TensorList& params) const { return detail::zero_slots(params, {"p"}); }

StepResult SymplecticEuler::update(const TensorList& params, const TensorList& grads, const at::Tensor& loss,
                                   const OptimizerState& state) const {
  at::Tensor energy;
  if (loss.defined()) {
    // The energy pairs θ_t with m_t (both before the step); the loss handed in is L(θ_t).
    detail::check_update_args(name(), params, grads);
    const int64_t b = detail::batch_size(name(), params);
    HAMLET_CHECK(loss.dim() == 1 && loss.size(0) == b, name(), ": loss must be [B] = [", b, "], got ",
                 loss.sizes());
    const TensorList& m = detail::slot(name(), state, "p", params.size());
    energy = 0.5 * detail::sum_sq_where_defined(m, grads, loss) + loss;
  }
  StepResult r = detail::per_parameter_update(name(), params, grads, state, {"p"},
                                              [&](std::size_t, const at::Tensor& p, const at::Tensor& g, TensorList& m) {
                                                m[0] = options_.friction * m[0] - options_.lr * g;
                                                return p + options_.lr * m[0];
                                              });
  if (energy.defined()) r.diagnostics["energy"] = energy;
  return r;
}

}  // namespace hamlet::optim
