#include "hamlet/tasks/quadratic.hpp"

#include "dtype.hpp"
#include "hamlet/core/error.hpp"
#include "hamlet/core/seed.hpp"

namespace hamlet::tasks {

const OptionSpec<QuadraticOptions>& QuadraticOptions::spec() {
  static const auto s = OptionSpec<QuadraticOptions>("quadratic")
                            .add("dim", &QuadraticOptions::dim, "dimension d of theta", checks::positive)
                            .add("dtype", &QuadraticOptions::dtype, "float32 | float64", detail::check_dtype);
  return s;
}

QuadraticBatch::QuadraticBatch(at::Tensor w, at::Tensor y) : w_(std::move(w)), y_(std::move(y)) {
  HAMLET_CHECK(w_.dim() == 3 && y_.dim() == 2 && w_.size(0) == y_.size(0) && w_.size(1) == y_.size(1) &&
                   w_.size(2) == y_.size(1),
               "QuadraticBatch expects W [B, n, n] and y [B, n], got ", w_.sizes(), " and ", y_.sizes());
}

TensorList QuadraticBatch::initial_params() const { return {at::zeros_like(y_)}; }

at::Tensor QuadraticBatch::loss(const TensorList& params, int64_t /*step*/) const {
  HAMLET_CHECK(params.size() == 1, "quadratic loss expects one parameter tensor, got ", params.size());
  const at::Tensor residual = at::bmm(w_, params[0].unsqueeze(2)).squeeze(2) - y_;
  return (residual * residual).sum(1);
}

at::Tensor QuadraticBatch::optimum() const {
  return at::linalg_solve(w_.to(at::kDouble), y_.to(at::kDouble).unsqueeze(2)).squeeze(2).to(y_.scalar_type());
}

QuadraticTask::QuadraticTask(QuadraticOptions options) : options_(std::move(options)) { options_.validate(); }

int64_t QuadraticTask::data_bytes_per_problem() const {
  const int64_t element = options_.dtype == "float64" ? 8 : 4;
  // W and y, and the residual Wθ − y with its gradient.
  return (options_.dim * options_.dim + 3 * options_.dim) * element;
}

std::unique_ptr<ProblemBatch> QuadraticTask::sample(Split split, uint64_t seed, int64_t first, int64_t count,
                                                    c10::Device device) const {
  HAMLET_CHECK(count > 0 && first >= 0, "quadratic: cannot sample ", count, " problems from index ", first);
  const int64_t n = options_.dim;
  std::vector<at::Tensor> ws, ys;
  ws.reserve(count);
  ys.reserve(count);
  // Draw in float64 from the problem's own generator so a problem is the same in every dtype and batch.
  const auto opts = at::TensorOptions().dtype(at::kDouble);
  for (int64_t i = first; i < first + count; ++i) {
    at::Generator gen = make_generator(problem_seed(split, seed, i));
    ws.push_back(at::randn({n, n}, gen, opts));
    ys.push_back(at::randn({n}, gen, opts));
  }
  const auto dtype = detail::parse_dtype("quadratic", options_.dtype);
  return std::make_unique<QuadraticBatch>(at::stack(ws).to(device, dtype), at::stack(ys).to(device, dtype));
}

}  // namespace hamlet::tasks
