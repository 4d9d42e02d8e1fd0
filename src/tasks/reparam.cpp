#include "hamlet/tasks/reparam.hpp"

#include <cmath>

#include "hamlet/core/error.hpp"
#include "hamlet/core/seed.hpp"

namespace hamlet::tasks {
namespace {

constexpr uint64_t kReparamStream = 0x5245504152414dULL;  // "REPARAM"

}  // namespace

ReparamBatch::ReparamBatch(std::shared_ptr<const ProblemBatch> inner, TensorList scales)
    : inner_(std::move(inner)), scales_(std::move(scales)) {
  HAMLET_CHECK(inner_ && scales_.size() == inner_->initial_params().size(), "ReparamBatch: ", scales_.size(),
               " scales for ", inner_ ? inner_->initial_params().size() : 0, " parameter tensors");
}

TensorList ReparamBatch::initial_params() const {
  TensorList out;
  const TensorList theta0 = inner_->initial_params();
  for (std::size_t i = 0; i < theta0.size(); ++i) out.push_back(theta0[i] / scales_[i]);
  return out;
}

at::Tensor ReparamBatch::loss(const TensorList& params, int64_t step) const {
  TensorList theta;
  for (std::size_t i = 0; i < params.size(); ++i) theta.push_back(params[i] * scales_[i]);
  return inner_->loss(theta, step);
}

std::unique_ptr<ProblemBatch> reparametrise(std::shared_ptr<const ProblemBatch> inner, double decades, uint64_t seed,
                                            int64_t first) {
  HAMLET_CHECK(decades > 0 && std::isfinite(decades), "reparametrisation range must be > 0 decades, got ", decades);
  const TensorList theta0 = inner->initial_params();
  const int64_t b = inner->size();
  std::vector<std::vector<double>> exponents(theta0.size());
  for (int64_t i = 0; i < b; ++i) {
    at::Generator gen = make_generator(mix_seeds({seed, kReparamStream, static_cast<uint64_t>(first + i)}));
    const at::Tensor u = at::empty({static_cast<int64_t>(theta0.size())}, at::TensorOptions().dtype(at::kDouble))
                             .uniform_(-decades, decades, gen);
    for (std::size_t k = 0; k < theta0.size(); ++k) exponents[k].push_back(u[static_cast<int64_t>(k)].item<double>());
  }
  TensorList scales;
  for (std::size_t k = 0; k < theta0.size(); ++k) {
    std::vector<int64_t> shape(static_cast<std::size_t>(theta0[k].dim()), 1);
    shape[0] = b;
    const at::Tensor e = at::tensor(exponents[k], at::TensorOptions().dtype(at::kDouble)).reshape(shape);
    scales.push_back(at::pow(10.0, e).to(theta0[k].options()));
  }
  return std::make_unique<ReparamBatch>(std::move(inner), std::move(scales));
}

}  // namespace hamlet::tasks
