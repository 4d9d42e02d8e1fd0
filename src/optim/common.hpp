#pragma once
// Private helpers shared by the hand-designed optimizers (not part of the public interface).
#include <ATen/ATen.h>

#include <functional>
#include <string>
#include <vector>

#include "hamlet/core/tensor.hpp"
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

// One parameter's step for per_parameter_update: reads θ_i, g_i and the parameter's buffers (one per slot, in
// the order the slots were named), replaces the buffers with their next values and returns θ_i's next value.
using ParamStep =
    std::function<at::Tensor(std::size_t index, const at::Tensor& param, const at::Tensor& grad, TensorList& buffers)>;
// The update of an optimizer that treats each parameter tensor on its own: checks the arguments, applies `step`
// to every parameter with a defined gradient, passes the others (and their buffers) through unchanged, stores the
// buffers back into their slots and counts the step.
StepResult per_parameter_update(const std::string& owner, const TensorList& params, const TensorList& grads,
                                const OptimizerState& state, const std::vector<std::string>& slots,
                                const ParamStep& step);
// A state with the named slots at zero for every parameter.
OptimizerState zero_slots(const TensorList& params, const std::vector<std::string>& slots);

}  // namespace hamlet::optim::detail
