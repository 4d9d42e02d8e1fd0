#include "hamlet/optim/adam.hpp"

#include <cmath>

#include "common.hpp"
#include "fused.hpp"
#include "hamlet/core/error.hpp"

namespace hamlet::optim {

const OptionSpec<AdamOptions>& AdamOptions::spec() {
  static const auto s = OptionSpec<AdamOptions>("adam")
                            .add("lr", &AdamOptions::lr, "learning rate", checks::positive)
                            .add("beta1", &AdamOptions::beta1, "decay of the first moment m", checks::in_range(0, 1))
                            .add("beta2", &AdamOptions::beta2, "decay of the second moment v", checks::in_range(0, 1))
                            .add("eps", &AdamOptions::eps, "added to the bias-corrected sqrt(v)", checks::non_negative);
  return s;
}

namespace {
// The tensor rule below, per coordinate, for the fused path (fused.hpp).
struct AdamRule {
  double beta1, beta2, bias2_sqrt, eps, step_size;
  template <typename T>
  T operator()(T theta, T g, T* b) const {
    b[0] = T(beta1) * b[0] + T(1.0 - beta1) * g;
    b[1] = T(beta2) * b[1] + T(1.0 - beta2) * (g * g);
    const T denom = std::sqrt(b[1]) / T(bias2_sqrt) + T(eps);
    return theta - T(step_size) * (b[0] / denom);
  }
};
}  // namespace

OptimizerState Adam::init(const TensorList& params) const {
  return detail::zero_slots(params, {"exp_avg", "exp_avg_sq"});
}

StepResult Adam::update(const TensorList& params, const TensorList& grads, const at::Tensor& loss,
                        const OptimizerState& state) const {
  const int64_t t = state.step + 1;
  // Bias corrections are host scalars (the step count is known on the host): no device sync, and the same
  // arithmetic order as torch::optim::Adam so trajectories agree to rounding.
  const double bias1 = 1.0 - std::pow(options_.beta1, static_cast<double>(t));
  const double bias2_sqrt = std::sqrt(1.0 - std::pow(options_.beta2, static_cast<double>(t)));
  const double step_size = options_.lr / bias1;
  return detail::per_parameter_update(
      name(), params, grads, state, {"exp_avg", "exp_avg_sq"},
      [&](std::size_t, const at::Tensor& p, const at::Tensor& g, TensorList& mv) {
        at::Tensor next;
        const AdamRule rule{options_.beta1, options_.beta2, bias2_sqrt, options_.eps, step_size};
        if (detail::fused_elementwise<2>(rule, p, g, mv, next)) return next;
        mv[0] = options_.beta1 * mv[0] + (1.0 - options_.beta1) * g;
        mv[1] = options_.beta2 * mv[1] + (1.0 - options_.beta2) * (g * g);
        const at::Tensor denom = mv[1].sqrt() / bias2_sqrt + options_.eps;
        return p - step_size * (mv[0] / denom);
      });
}

}  // namespace hamlet::optim
