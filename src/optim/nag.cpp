#include "hamlet/optim/nag.hpp"

#include "common.hpp"
#include "hamlet/core/error.hpp"

namespace hamlet::optim {

const OptionSpec<NagOptions>& NagOptions::spec() {
  static const auto s = OptionSpec<NagOptions>("nag").include_base<MomentumOptions>();
  return s;
}

at::Tensor Nag::step(const at::Tensor& p, const at::Tensor& g, TensorList& buf) const {
  buf[0] = options_.momentum * buf[0] + g;
  return p - options_.lr * (g + options_.momentum * buf[0]);
}

}  // namespace hamlet::optim
