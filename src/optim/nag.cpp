#include "hamlet/optim/nag.hpp"

#include "common.hpp"
#include "fused.hpp"
#include "hamlet/core/error.hpp"

namespace hamlet::optim {

const OptionSpec<NagOptions>& NagOptions::spec() {
  static const auto s = OptionSpec<NagOptions>("nag").include_base<MomentumOptions>();
  return s;
}

namespace {
struct NagRule {
  double lr, mu;
  template <typename T>
  T operator()(T theta, T g, T* b) const {
    b[0] = T(mu) * b[0] + g;
    return theta - T(lr) * (g + T(mu) * b[0]);
  }
};
}  // namespace

at::Tensor Nag::step(const at::Tensor& p, const at::Tensor& g, TensorList& buf) const {
  at::Tensor next;
  if (detail::fused_elementwise<1>(NagRule{options_.lr, options_.momentum}, p, g, buf, next)) return next;
  buf[0] = options_.momentum * buf[0] + g;
  return p - options_.lr * (g + options_.momentum * buf[0]);
}

}  // namespace hamlet::optim
