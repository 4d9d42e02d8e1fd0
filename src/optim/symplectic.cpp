#include "hamlet/optim/symplectic.hpp"

#include "common.hpp"
#include "hamlet/core/error.hpp"

namespace hamlet::optim {

const OptionSpec<SymplecticOptions>& SymplecticOptions::spec() {
  static const auto s = OptionSpec<SymplecticOptions>("symplectic")
                            .add("lr", &SymplecticOptions::lr, "learning rate", checks::positive)
                            .add("beta", &SymplecticOptions::beta, "EMA factor", checks::in_range(0, 1))
                            .add("epsilon", &SymplecticOptions::epsilon, "keeps alpha finite at m = g = 0",
                                 checks::positive);
  return s;
}

OptimizerState AdvancedSymplectic::init(const TensorList& params) const { return detail::zero_slots(params, {"p"}); }

StepResult AdvancedSymplectic::update(const TensorList& params, const TensorList& grads, const at::Tensor& loss,
                                      const OptimizerState& state) const {
  at::Tensor energy;
  StepResult r = detail::per_parameter_update(
      name(), params, grads, state, {"p"},
      [&](std::size_t i, const at::Tensor& param, const at::Tensor& g, TensorList& m) {
        HAMLET_CHECK(param.dim() >= 1, name(), ": parameter ", i, " needs a leading problem dimension [B, ...]");
        m[0] = options_.beta * m[0] + (1.0 - options_.beta) * g;
        // The original reduces over the whole tensor; here each problem's slice of the tensor is one such tensor.
        const at::Tensor h = 0.5 * (per_problem_sum_sq(m[0]) + per_problem_sum_sq(g));
        const at::Tensor alpha = options_.lr / (h.sqrt() + options_.epsilon);
        energy = energy.defined() ? energy + h : h;
        return param - detail::per_problem(alpha, m[0]) * m[0];
      });
  if (energy.defined()) r.diagnostics["energy"] = energy;
  return r;
}

}  // namespace hamlet::optim
