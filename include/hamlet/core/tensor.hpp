#pragma once
// Tensor conventions used throughout hamlet.
//
// A batch of B independent problems is one tensor program: every parameter tensor carries the problem index as
// its leading dimension ([B, ...]) and losses come back as a [B] tensor. "Per problem" reductions therefore
// reduce over every dimension except 0. Parameters are plain tensors held in a TensorList so that an update rule
// can be differentiated through (no nn::Module state, no in-place ops on the differentiable path).
#include <ATen/ATen.h>

#include <cstdint>
#include <vector>

namespace hamlet {

using TensorList = std::vector<at::Tensor>;

// Sum of squares of `x` over every dimension but the leading problem dimension: [B, ...] -> [B].
at::Tensor per_problem_sum_sq(const at::Tensor& x);
// Sum over tensors of per_problem_sum_sq: the squared global (all-tensor) norm per problem, [B].
at::Tensor per_problem_sum_sq(const TensorList& xs);
// sqrt of the above: global Euclidean norm per problem, [B].
at::Tensor per_problem_norm(const TensorList& xs);
// Broadcasts a per-problem [B] tensor against a [B, ...] tensor of rank `rank` (adds trailing singleton dims).
at::Tensor expand_per_problem(const at::Tensor& per_problem, int64_t rank);

// Returns copies of `xs` detached from any graph (values shared, no autograd history).
TensorList detach_all(const TensorList& xs);
// Detached copies that require grad: fresh autograd leaves with the same values.
TensorList fresh_leaves(const TensorList& xs);

// Number of scalar parameters per problem (product of non-leading dims, summed over tensors).
int64_t per_problem_numel(const TensorList& xs);

}  // namespace hamlet
