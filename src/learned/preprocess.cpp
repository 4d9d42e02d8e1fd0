#include "hamlet/learned/preprocess.hpp"

#include <cmath>

namespace hamlet::learned {

at::Tensor preprocess(const at::Tensor& x, bool differentiable, double p) {
  const at::Tensor v = differentiable ? x : x.detach();
  const at::Tensor magnitude = v.abs();
  const at::Tensor large = magnitude >= std::exp(-p);
  // abs() has derivative sign(x) (0 at 0) and sign() has derivative 0, so autograd of these expressions is
  // exactly the §1.9 state_grad derivative; where() routes the gradient to the selected branch only, and both
  // branches are finite everywhere (the 1e-8 keeps the log finite at 0), so no NaN leaks through the mask.
  const at::Tensor log_feature = at::where(large, (magnitude + 1e-8).log() / p, at::full_like(v, -1.0));
  const at::Tensor sign_feature = at::where(large, v.sign(), v * std::exp(p));
  return at::stack({log_feature, sign_feature}, -1);
}

}  // namespace hamlet::learned
