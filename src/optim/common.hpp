#pragma once
// Private helpers shared by the hand-designed optimizers (not part of the public interface).
#include <ATen/ATen.h>

#include <functional>
#include <string>
#include <vector>

#include "hamlet/core/tensor.hpp"
#include "hamlet/optim/elementwise.hpp"
#include "hamlet/optim/optimizer.hpp"

namespace hamlet::optim::detail {

// Throws unless params and grads pair up one to one with matching shapes. An undefined gradient is allowed: the
// optimizers leave that parameter and its buffers untouched.
void check_update_args(const std::string& owner, const TensorList& params, const TensorList& grads);
// The per-parameter buffer `name` of `state`, checked to hold one tensor per parameter.
const TensorList& slot(const std::string& owner, const OptimizerState& state, const std::string& name,
                       std::size_t count);
// The per-problem scalar `name` of `state`.
const at::Tensor& scalar(const std::string& owner, const OptimizerState& state, const std::string& name);
// Zero tensors shaped, typed and placed like `xs`.
TensorList zeros_like_all(const TensorList& xs);
// Sum over the tensors with a defined gradient of per_problem_sum_sq(xs[i]); zeros [B] like `like` if none.
at::Tensor sum_sq_where_defined(const TensorList& xs, const TensorList& grads, const at::Tensor& like);
// Reshapes a [B] tensor to broadcast against `x` ([B, ...]).
inline at::Tensor per_problem(const at::Tensor& values, const at::Tensor& x) {
  return expand_per_problem(values, x.dim());
}
// Leading (problem) dimension of the first parameter, with a clear error for a 0-dim tensor.
int64_t batch_size(const std::string& owner, const TensorList& params);

}  // namespace hamlet::optim::detail
