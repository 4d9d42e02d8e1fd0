#include "hamlet/optim/rmsprop.hpp"

#include <cmath>

#include "common.hpp"
#include "fused.hpp"
#include "hamlet/core/error.hpp"

namespace hamlet::optim {

const OptionSpec<RmsPropOptions>& RmsPropOptions::spec() {
  static const auto s = OptionSpec<RmsPropOptions>("rmsprop")
                            .add("lr", &RmsPropOptions::lr, "learning rate", checks::positive)
                            .add("alpha", &RmsPropOptions::alpha, "smoothing constant of v", checks::in_range(0, 1))
                            .add("eps", &RmsPropOptions::eps, "added to sqrt(v)", checks::non_negative);
  return s;
}

namespace {
struct RmsPropRule {
  double lr, alpha, eps;
  template <typename T>
  T operator()(T theta, T g, T* b) const {
    b[0] = T(alpha) * b[0] + T(1.0 - alpha) * (g * g);
    return theta - T(lr) * (g / (std::sqrt(b[0]) + T(eps)));
  }
};
}  // namespace

at::Tensor RmsProp::step(const at::Tensor& p, const at::Tensor& g, TensorList& v) const {
  at::Tensor next;
  if (detail::fused_elementwise<1>(RmsPropRule{options_.lr, options_.alpha, options_.eps}, p, g, v, next)) return next;
  v[0] = options_.alpha * v[0] + (1.0 - options_.alpha) * (g * g);
  return p - options_.lr * (g / (v[0].sqrt() + options_.eps));
}

}  // namespace hamlet::optim
