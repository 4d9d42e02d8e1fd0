#pragma once
// Shared fixtures for the meta tests: a small meta-training configuration and a value comparison of weight lists.
#include <ATen/ATen.h>

#include "hamlet/core/tensor.hpp"
#include "hamlet/meta/meta_train.hpp"

namespace hamlet::test {

// 3 epochs x 4 trajectories of T = 30 steps in windows of U = 10, B = 4 problems, 8 validation problems.
inline meta::MetaTrainOptions small_meta_options() {
  meta::MetaTrainOptions o;
  o.schedule.epochs = 3;
  o.schedule.trajectories = 4;
  o.schedule.horizon = 30;
  o.schedule.unroll = 10;
  o.schedule.batch = 4;
  o.validation.problems = 8;
  o.progress = false;
  return o;
}

// Same count and, compared in float64, the same values.
inline bool same_tensors(const TensorList& a, const TensorList& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (!at::equal(a[i].to(at::kDouble), b[i].to(at::kDouble))) return false;
  }
  return true;
}

}  // namespace hamlet::test
