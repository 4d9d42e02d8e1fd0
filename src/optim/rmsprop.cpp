#include "hamlet/optim/rmsprop.hpp"

#include "common.hpp"
#include "hamlet/core/error.hpp"

namespace hamlet::optim {

const OptionSpec<RmsPropOptions>& RmsPropOptions::spec() {
  static const auto s = OptionSpec<RmsPropOptions>("rmsprop")
                            .add("lr", &RmsPropOptions::lr, "learning rate", checks::positive)
                            .add("alpha", &RmsPropOptions::alpha, "smoothing constant of v", checks::in_range(0, 1))
                            .add("eps", &RmsPropOptions::eps, "added to sqrt(v)", checks::non_negative);
  return s;
}

at::Tensor RmsProp::step(const at::Tensor& p, const at::Tensor& g, TensorList& v) const {
  v[0] = options_.alpha * v[0] + (1.0 - options_.alpha) * (g * g);
  return p - options_.lr * (g / (v[0].sqrt() + options_.eps));
}

}  // namespace hamlet::optim
