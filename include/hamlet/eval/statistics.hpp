#pragma once
// Statistics over paired problems: mean ± standard error (SE = sample std / √n), median, paired differences.
// Non-finite values are kept (a diverged problem makes the mean non-finite, which is the honest outcome) and
// counted separately.
#include <ATen/ATen.h>

#include <cstdint>

namespace hamlet::eval {

struct MeanSe {
  double mean = 0, se = 0;
  int64_t n = 0;
};

// Mean and standard error of a 1-D tensor (float64 computation; SE = 0 for n = 1).
MeanSe mean_se(const at::Tensor& values);
// Median of a 1-D tensor (average of the two middle values for even n; NaN if any value is NaN).
double median(const at::Tensor& values);
// Mean ± SE of a − b over paired problems (same problem index in both).
MeanSe paired_difference(const at::Tensor& a, const at::Tensor& b);

}  // namespace hamlet::eval
