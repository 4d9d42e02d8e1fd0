#include "hamlet/core/tensor.hpp"

#include "hamlet/core/error.hpp"

namespace hamlet {

at::Tensor per_problem_sum_sq(const at::Tensor& x) {
  HAMLET_CHECK(x.dim() >= 1, "per-problem reduction needs a leading problem dimension");
  if (x.dim() == 1) return x * x;
  return x.reshape({x.size(0), -1}).pow(2).sum(1);
}

at::Tensor per_problem_sum_sq(const TensorList& xs) {
  HAMLET_CHECK(!xs.empty(), "per-problem reduction over an empty tensor list");
  at::Tensor total = per_problem_sum_sq(xs[0]);
  for (std::size_t i = 1; i < xs.size(); ++i) total = total + per_problem_sum_sq(xs[i]);
  return total;
}

at::Tensor per_problem_norm(const TensorList& xs) { return per_problem_sum_sq(xs).sqrt(); }

at::Tensor expand_per_problem(const at::Tensor& per_problem, int64_t rank) {
  std::vector<int64_t> shape(static_cast<std::size_t>(rank), 1);
  shape[0] = per_problem.size(0);
  return per_problem.reshape(shape);
}

TensorList detach_all(const TensorList& xs) {
  TensorList out;
  out.reserve(xs.size());
  for (const auto& x : xs) out.push_back(x.detach());
  return out;
}

TensorList fresh_leaves(const TensorList& xs) {
  TensorList out;
  out.reserve(xs.size());
  for (const auto& x : xs) out.push_back(x.detach().requires_grad_(true));
  return out;
}

int64_t per_problem_numel(const TensorList& xs) {
  int64_t n = 0;
  for (const auto& x : xs) n += x.dim() <= 1 ? 1 : x.numel() / x.size(0);
  return n;
}

}  // namespace hamlet
