#include "hamlet/eval/statistics.hpp"

#include <algorithm>
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

namespace {

at::Tensor as_seeds_by_problems(const at::Tensor& x, const char* what) {
  HAMLET_CHECK(x.dim() == 2 && x.size(0) > 0 && x.size(1) > 0, what, ": expected [seeds, problems] values, got shape ",
               x.sizes());
  return x.detach().to(at::kCPU, at::kDouble);
}

// Sample variance over seeds of the per-seed means divided by the number of seeds: the seed term of §12.
double seed_term(const at::Tensor& x) {
  const int64_t s = x.size(0);
  return s > 1 ? x.mean(1).var(/*unbiased=*/true).item<double>() / static_cast<double>(s) : 0.0;
}

SeededMeanSe combine(const at::Tensor& per_problem, double seed_part, int64_t seeds) {
  const MeanSe p = mean_se(per_problem);
  SeededMeanSe out;
  out.mean = p.mean;
  out.problem_se = p.se;
  out.se = std::sqrt(p.se * p.se + seed_part);
  out.seeds = seeds;
  out.problems = p.n;
  return out;
}

}  // namespace

SeededMeanSe seeded_mean_se(const at::Tensor& x) {
  const at::Tensor v = as_seeds_by_problems(x, "seeded_mean_se");
  return combine(v.mean(0), seed_term(v), v.size(0));
}

SeededMeanSe seeded_difference(const at::Tensor& a, const at::Tensor& b) {
  const at::Tensor va = as_seeds_by_problems(a, "seeded_difference (first method)");
  const at::Tensor vb = as_seeds_by_problems(b, "seeded_difference (second method)");
  HAMLET_CHECK(va.size(1) == vb.size(1), "seeded_difference: the methods have ", va.size(1), " and ", vb.size(1),
               " problems; a paired difference needs the same problems");
  return combine(va.mean(0) - vb.mean(0), seed_term(va) + seed_term(vb), std::max(va.size(0), vb.size(0)));
}

SeededMeanSe seed_paired_difference(const at::Tensor& a, const at::Tensor& b) {
  const at::Tensor va = as_seeds_by_problems(a, "seed_paired_difference (first method)");
  const at::Tensor vb = as_seeds_by_problems(b, "seed_paired_difference (second method)");
  HAMLET_CHECK(va.sizes() == vb.sizes(), "seed_paired_difference: the methods have shapes ", va.sizes(), " and ",
               vb.sizes(), "; pairing by seed needs the same seeds and problems");
  return seeded_mean_se(va - vb);  // the one-method statistics of the per-seed, per-problem differences
}

Verdict verdict(double difference, double se) {
  if (!std::isfinite(difference) || !std::isfinite(se)) return Verdict::kTie;
  if (difference < -2.0 * se) return Verdict::kABetter;
  if (difference > 2.0 * se) return Verdict::kBBetter;
  return Verdict::kTie;
}

double joint_se_vs_published(double se, double per_problem_sd, int64_t runs) {
  HAMLET_CHECK(runs > 0, "joint_se_vs_published: runs must be > 0, got ", runs);
  const double paper = per_problem_sd / std::sqrt(static_cast<double>(runs));
  return std::sqrt(se * se + paper * paper);
}

}  // namespace hamlet::eval
