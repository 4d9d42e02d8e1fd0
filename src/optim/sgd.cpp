#include "hamlet/optim/sgd.hpp"

#include "common.hpp"
#include "hamlet/core/error.hpp"

namespace hamlet::optim {

const OptionSpec<SgdOptions>& SgdOptions::spec() {
  static const auto s = OptionSpec<SgdOptions>("sgd").add("lr", &SgdOptions::lr, "learning rate", checks::positive);
  return s;
}

at::Tensor Sgd::step(const at::Tensor& p, const at::Tensor& g, TensorList&) const { return p - options_.lr * g; }

}  // namespace hamlet::optim
