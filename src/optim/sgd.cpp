#include "hamlet/optim/sgd.hpp"

#include "common.hpp"
#include "fused.hpp"
#include "hamlet/core/error.hpp"

namespace hamlet::optim {

const OptionSpec<SgdOptions>& SgdOptions::spec() {
  static const auto s = OptionSpec<SgdOptions>("sgd").add("lr", &SgdOptions::lr, "learning rate", checks::positive);
  return s;
}

namespace {
struct SgdRule {
  double lr;
  template <typename T>
  T operator()(T theta, T g, T*) const {
    return theta - T(lr) * g;
  }
};
}  // namespace

at::Tensor Sgd::step(const at::Tensor& p, const at::Tensor& g, TensorList& buffers) const {
  at::Tensor next;
  if (detail::fused_elementwise<0>(SgdRule{options_.lr}, p, g, buffers, next)) return next;
  return p - options_.lr * g;
}

}  // namespace hamlet::optim
