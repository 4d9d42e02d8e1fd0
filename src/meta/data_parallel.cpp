#include "hamlet/meta/data_parallel.hpp"

#include <ATen/ATen.h>

#include "hamlet/core/error.hpp"

namespace hamlet::meta {
namespace {

// Header of the packed message, before the per-weight "defined" flags and the gradients.
enum Field : int64_t { kWindow, kCut, kLoss, kDeltaAbs, kSteps, kTerms, kHeader };

}  // namespace

DataParallelEstimator::DataParallelEstimator(GradientEstimatorPtr inner, parallel::CommunicatorPtr communicator)
    : inner_(std::move(inner)), communicator_(std::move(communicator)) {
  HAMLET_CHECK(inner_ && communicator_, "DataParallelEstimator needs an estimator and a communicator");
}

void DataParallelEstimator::start(const Episode& episode, learned::LearnedOptimizer& optimizer) {
  cut_ = false;
  inner_->start(episode, optimizer);
}

MetaGradient DataParallelEstimator::advance(learned::LearnedOptimizer& optimizer) {
  const MetaGradient local = inner_->advance(optimizer);
  const TensorList weights = optimizer.weights();
  const auto n = static_cast<int64_t>(weights.size());
  const bool contributes = local.window && !local.cut;
  // This rank's window loss: bptt keeps the differentiated tensor, es / pes report their pair average.
  const double loss = local.loss.defined() ? local.loss.detach().item<double>() : local.meta_loss;

  TensorList parts;
  at::Tensor header = at::zeros({kHeader + n}, at::kDouble);
  auto h = header.accessor<double, 1>();
  h[kWindow] = local.window ? 1 : 0;
  h[kCut] = local.cut ? 1 : 0;
  h[kLoss] = contributes ? loss : 0;
  h[kDeltaAbs] = contributes ? local.delta_abs_mean : 0;
  h[kSteps] = static_cast<double>(local.optimizee_steps);
  h[kTerms] = static_cast<double>(local.terms);
  parts.push_back(header);
  for (int64_t i = 0; i < n; ++i) {
    const bool defined = contributes && static_cast<std::size_t>(i) < local.grads.size() && local.grads[i].defined();
    h[kHeader + i] = defined ? 1 : 0;
    parts.push_back(defined ? local.grads[i] : at::zeros(weights[i].sizes(), at::kDouble));
  }
  at::Tensor flat = parallel::pack(parts);
  communicator_->all_reduce_sum(flat);

  const double world = static_cast<double>(communicator_->world_size());
  const at::Tensor sum = flat.narrow(0, 0, kHeader + n);
  const auto s = sum.accessor<double, 1>();
  MetaGradient out;
  out.optimizee_steps = static_cast<int64_t>(s[kSteps]);
  out.cut = s[kCut] > 0;
  cut_ = cut_ || out.cut;
  HAMLET_CHECK(out.cut || s[kWindow] == 0 || s[kWindow] == world, "data-parallel meta-training: ",
               static_cast<int64_t>(s[kWindow]), " of ", communicator_->world_size(),
               " ranks closed a window (the ranks disagree on the episode's truncation grid)");
  out.window = !out.cut && s[kWindow] == world;
  if (!out.window) return out;
  // bptt ranks each averaged over an equal share of the problems: the batch mean is the mean over ranks.
  const double scale = inner_->rank_split() == RankSplit::kProblems ? 1.0 / world : 1.0;
  out.meta_loss = s[kLoss] * scale;
  out.delta_abs_mean = s[kDeltaAbs] * scale;
  out.terms = static_cast<int64_t>(s[kTerms] / world);
  int64_t offset = kHeader + n;
  for (int64_t i = 0; i < n; ++i) {
    const at::Tensor g = flat.narrow(0, offset, weights[i].numel());
    offset += weights[i].numel();
    out.grads.push_back(s[kHeader + i] > 0
                            ? (g * scale).reshape(weights[i].sizes()).to(weights[i].device(), weights[i].scalar_type())
                            : at::Tensor());
  }
  return out;
}

}  // namespace hamlet::meta
