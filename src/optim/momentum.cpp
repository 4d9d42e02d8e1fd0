#include "hamlet/optim/momentum.hpp"

#include "common.hpp"
#include "fused.hpp"
#include "hamlet/core/error.hpp"

namespace hamlet::optim {

// μ = 1 is allowed: it is the frictionless heavy ball of docs/methods.md §7.1.
const OptionSpec<MomentumOptions>& MomentumOptions::spec() {
  static const auto s = OptionSpec<MomentumOptions>("momentum")
                            .add("lr", &MomentumOptions::lr, "learning rate", checks::positive)
                            .add("momentum", &MomentumOptions::momentum, "momentum coefficient mu in [0, 1]",
                                 checks::in_range(0, 1, /*hi_inclusive=*/true));
  return s;
}

namespace {
struct MomentumRule {
  double lr, mu;
  template <typename T>
  T operator()(T theta, T g, T* b) const {
    b[0] = T(mu) * b[0] + g;
    return theta - T(lr) * b[0];
  }
};
}  // namespace

at::Tensor Momentum::step(const at::Tensor& p, const at::Tensor& g, TensorList& buf) const {
  at::Tensor next;
  if (detail::fused_elementwise<1>(MomentumRule{options_.lr, options_.momentum}, p, g, buf, next)) return next;
  // With the buffer starting at zero, μ·0 + g reproduces PyTorch's "b = g at the first step" exactly.
  buf[0] = options_.momentum * buf[0] + g;
  return p - options_.lr * buf[0];
}

}  // namespace hamlet::optim
