#include "hamlet/tasks/classification_metrics.hpp"

#include <algorithm>
#include <limits>

#include "hamlet/core/error.hpp"

namespace hamlet::tasks {

ClassificationMetrics classification_metrics(const at::Tensor& labels, const at::Tensor& predictions) {
  HAMLET_CHECK(labels.dim() == 1 && predictions.dim() == 1 && labels.numel() == predictions.numel() &&
                   labels.numel() > 0,
               "classification_metrics: expected two [N] tensors with N >= 1, got ", labels.sizes(), " and ",
               predictions.sizes());
  const at::Tensor y = labels.to(at::kLong).cpu(), p = predictions.to(at::kLong).cpu();
  HAMLET_CHECK(y.min().item<int64_t>() >= 0 && p.min().item<int64_t>() >= 0,
               "classification_metrics: class indices must be >= 0");
  const int64_t classes = std::max(y.max().item<int64_t>(), p.max().item<int64_t>()) + 1;
  // One confusion matrix: row = true class, column = predicted class; everything below reads its margins.
  const at::Tensor confusion = at::bincount(y * classes + p, {}, classes * classes).view({classes, classes})
                                   .to(at::kDouble);
  const at::Tensor tp = confusion.diagonal();
  const at::Tensor support = confusion.sum(1), predicted = confusion.sum(0);
  const double n = static_cast<double>(y.numel());

  // zero_division = 1: a class with no predictions gets precision 1, one with no true rows recall 1 (its weight is
  // 0 then, so only the precision case can show).
  const at::Tensor precision = at::where(predicted > 0, tp / predicted.clamp_min(1), at::ones_like(tp));
  const at::Tensor recall = at::where(support > 0, tp / support.clamp_min(1), at::ones_like(tp));
  const at::Tensor f1_den = 2 * tp + (predicted - tp) + (support - tp);
  const at::Tensor f1 = at::where(f1_den > 0, 2 * tp / f1_den.clamp_min(1), at::ones_like(tp));
  const at::Tensor weight = support / n;

  ClassificationMetrics m;
  m.accuracy = tp.sum().item<double>() / n;
  m.precision = (weight * precision).sum().item<double>();
  m.recall = (weight * recall).sum().item<double>();
  m.f1 = (weight * f1).sum().item<double>();
  // roc_auc_score on hard 0/1 scores: one threshold between 0 and 1, so the curve is (0,0)-(FPR,TPR)-(1,1) and its
  // area is (TPR + 1 − FPR)/2. It needs both classes among the labels and binary labels and scores.
  const bool binary = classes <= 2 && support.numel() == 2 && support[0].item<double>() > 0 &&
                      support[1].item<double>() > 0;
  m.auc = binary ? 0.5 * (recall[0].item<double>() + recall[1].item<double>())
                 : std::numeric_limits<double>::quiet_NaN();
  return m;
}

}  // namespace hamlet::tasks
