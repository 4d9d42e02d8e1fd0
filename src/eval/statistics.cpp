#include "hamlet/eval/statistics.hpp"

#include <cmath>
#include <limits>

#include "hamlet/core/error.hpp"

namespace hamlet::eval {

MeanSe mean_se(const at::Tensor& values) {
  const at::Tensor v = values.detach().to(at::kCPU, at::kDouble).reshape({-1});
  MeanSe out;
  out.n = v.numel();
  HAMLET_CHECK(out.n > 0, "mean of an empty set");
  out.mean = v.mean().item<double>();
  out.se = out.n > 1 ? v.std(/*unbiased=*/true).item<double>() / std::sqrt(static_cast<double>(out.n)) : 0.0;
  return out;
}

double median(const at::Tensor& values) {
  const at::Tensor v = values.detach().to(at::kCPU, at::kDouble).reshape({-1});
  HAMLET_CHECK(v.numel() > 0, "median of an empty set");
  if (v.isnan().any().item<bool>()) return std::numeric_limits<double>::quiet_NaN();
  const at::Tensor s = std::get<0>(v.sort());
  const int64_t n = s.numel();
  return n % 2 ? s[n / 2].item<double>() : 0.5 * (s[n / 2 - 1].item<double>() + s[n / 2].item<double>());
}

MeanSe paired_difference(const at::Tensor& a, const at::Tensor& b) {
  HAMLET_CHECK(a.numel() == b.numel(), "paired difference of ", a.numel(), " and ", b.numel(), " values");
  return mean_se(a.to(at::kDouble).reshape({-1}) - b.to(at::kDouble).reshape({-1}));
}

}  // namespace hamlet::eval
