// Two-level (meta-training seed, problem) statistics of docs/methods.md §12 against formulas written out here and the
// section's worked example.
#include "support/catch.hpp"

#include <cmath>
#include <vector>

#include "hamlet/eval/statistics.hpp"

using namespace hamlet::eval;

namespace {

at::Tensor grid(const std::vector<std::vector<double>>& rows) {
  std::vector<double> flat;
  for (const auto& r : rows) flat.insert(flat.end(), r.begin(), r.end());
  return at::tensor(flat, at::kDouble).reshape({static_cast<int64_t>(rows.size()), -1});
}

double sample_variance(const std::vector<double>& v) {
  double m = 0;
  for (double x : v) m += x;
  m /= static_cast<double>(v.size());
  double ss = 0;
  for (double x : v) ss += (x - m) * (x - m);
  return ss / static_cast<double>(v.size() - 1);
}

}  // namespace

TEST_CASE("two-level SE for 3 seeds x 4 problems equals s_d^2/N + v_A/S_A + v_B/S_B written out") {
  // Learned method A: 3 seeds x 4 problems; hand-designed B: 1 x 4.
  const std::vector<std::vector<double>> a = {{0.5, 0.7, 0.2, 0.9}, {0.6, 0.9, 0.1, 1.2}, {0.2, 0.4, 0.3, 0.5}};
  const std::vector<double> b = {0.4, 0.5, 0.3, 0.6};
  // By hand: per-problem seed means a_i, differences d_i, per-seed means m_s.
  std::vector<double> d, m;
  for (int i = 0; i < 4; ++i) d.push_back((a[0][i] + a[1][i] + a[2][i]) / 3.0 - b[i]);
  for (const auto& row : a) m.push_back((row[0] + row[1] + row[2] + row[3]) / 4.0);
  const double mean_d = (d[0] + d[1] + d[2] + d[3]) / 4.0;
  const double se_by_hand = std::sqrt(sample_variance(d) / 4.0 + sample_variance(m) / 3.0);

  const SeededMeanSe r = seeded_difference(grid(a), grid({b}));
  CHECK(r.mean == Approx(mean_d).epsilon(1e-14));
  CHECK(r.se == Approx(se_by_hand).epsilon(1e-14));
  CHECK(r.problem_se == Approx(std::sqrt(sample_variance(d) / 4.0)).epsilon(1e-14));
  CHECK(r.seeds == 3);
  CHECK(r.problems == 4);
  // Numbers (numpy): var(d) = 0.0254629629629630, var(m) = 0.0314583333333333.
  CHECK(mean_d == Approx(0.0916666666666667).epsilon(1e-12));
  CHECK(r.se == Approx(std::sqrt(0.0254629629629630 / 4.0 + 0.0314583333333333 / 3.0)).epsilon(1e-9));

  // The conservative estimate is never below the exact crossed-ANOVA one (docs/methods.md §12's second oracle).
  const int S = 3, N = 4;
  double ms_seed = 0, ms_prob = 0, ms_res = 0;
  std::vector<double> ds(S, 0.0);
  for (int s = 0; s < S; ++s) {
    for (int i = 0; i < N; ++i) ds[s] += (a[s][i] - b[i]) / N;
  }
  for (int s = 0; s < S; ++s) ms_seed += N * (ds[s] - mean_d) * (ds[s] - mean_d) / (S - 1);
  for (int i = 0; i < N; ++i) ms_prob += S * (d[i] - mean_d) * (d[i] - mean_d) / (N - 1);
  for (int s = 0; s < S; ++s) {
    for (int i = 0; i < N; ++i) {
      const double e = (a[s][i] - b[i]) - ds[s] - d[i] + mean_d;
      ms_res += e * e / ((S - 1) * (N - 1));
    }
  }
  const double anova_se = std::sqrt((ms_seed + ms_prob - ms_res) / (S * N));
  CHECK(r.se >= anova_se);
}

TEST_CASE("two-level statistics: one seed is the paired SE, one method alone, the worked example of §12") {
  const at::Tensor x = grid({{1.0, 2.0, 4.0, 7.0}});
  const SeededMeanSe one = seeded_mean_se(x);
  const MeanSe plain = mean_se(x.reshape({-1}));
  CHECK(one.mean == plain.mean);
  CHECK(one.se == plain.se);
  CHECK(one.seeds == 1);
  const SeededMeanSe paired = seeded_difference(x, grid({{0.5, 1.0, 1.0, 2.0}}));
  CHECK(paired.se == Approx(paired_difference(x.reshape({-1}), grid({{0.5, 1.0, 1.0, 2.0}}).reshape({-1})).se));

  // §12 worked example (Table A3, LSTM − HNN): a problem-only SE of 0.011 and per-seed means
  // 0.483 / 0.508 / 0.304 and 0.419 / 0.404 / 0.378 give SE ≈ 0.066. Per-problem values built so that every seed
  // has the stated mean and the differences have the stated problem spread.
  const int64_t n = 100;
  const std::vector<double> lstm = {0.483, 0.508, 0.304}, hnn = {0.419, 0.404, 0.378};
  // d_i = ±0.11 alternating has sample SD 0.11 * sqrt(n / (n - 1)), so SE = 0.011 * sqrt(100/99).
  at::Tensor pattern = at::empty({n}, at::kDouble);
  for (int64_t i = 0; i < n; ++i) pattern[i] = (i % 2 ? 0.11 : -0.11);
  at::Tensor a = at::empty({3, n}, at::kDouble), b = at::empty({3, n}, at::kDouble);
  for (int s = 0; s < 3; ++s) {
    a[s] = lstm[s] + pattern;
    b[s] = hnn[s];
  }
  const SeededMeanSe r = seeded_difference(a, b);
  CHECK(r.mean == Approx((0.483 + 0.508 + 0.304 - 0.419 - 0.404 - 0.378) / 3.0).epsilon(1e-12));
  CHECK(r.problem_se == Approx(0.011 * std::sqrt(100.0 / 99.0)).epsilon(1e-12));
  CHECK(r.se == Approx(0.066).margin(0.0005));
  CHECK(verdict(r.mean, r.se) == Verdict::kTie);
  CHECK(verdict(r.mean, r.problem_se) == Verdict::kBBetter);  // what the one-level table claimed
}

TEST_CASE("verdicts at exactly 2 SE are ties, beyond on either side they are not, joint SE vs a published draw") {
  CHECK(verdict(-2.0, 1.0) == Verdict::kTie);
  CHECK(verdict(2.0, 1.0) == Verdict::kTie);
  CHECK(verdict(-2.0000001, 1.0) == Verdict::kABetter);
  CHECK(verdict(2.0000001, 1.0) == Verdict::kBBetter);
  CHECK(verdict(std::nan(""), 1.0) == Verdict::kTie);
  CHECK(joint_se_vs_published(0.03, 0.4, 100) == Approx(0.05).epsilon(1e-12));
  CHECK_THROWS_WITH(seeded_difference(grid({{1, 2, 3}}), grid({{1, 2}})), Catch::Contains("same problems"));
}

TEST_CASE("seed-paired difference: the shared seed effect cancels, SE from the per-seed differences written out") {
  // The same 3 seeds x 4 problems evaluated twice (e.g. trained and tuned out_mul of the same weights).
  const std::vector<std::vector<double>> a = {{0.5, 0.7, 0.2, 0.9}, {0.6, 0.9, 0.1, 1.2}, {0.2, 0.4, 0.3, 0.5}};
  const std::vector<std::vector<double>> b = {{0.4, 0.8, 0.2, 0.7}, {0.6, 0.6, 0.2, 1.0}, {0.3, 0.4, 0.1, 0.5}};
  std::vector<double> d_problem(4, 0.0), d_seed(3, 0.0);
  for (int s = 0; s < 3; ++s) {
    for (int i = 0; i < 4; ++i) {
      d_problem[i] += (a[s][i] - b[s][i]) / 3.0;
      d_seed[s] += (a[s][i] - b[s][i]) / 4.0;
    }
  }
  double mean_d = 0;
  for (double x : d_problem) mean_d += x / 4.0;
  const SeededMeanSe r = seed_paired_difference(grid(a), grid(b));
  CHECK(r.mean == Approx(mean_d).epsilon(1e-14));
  CHECK(r.se == Approx(std::sqrt(sample_variance(d_problem) / 4.0 + sample_variance(d_seed) / 3.0)).epsilon(1e-14));
  CHECK(r.seeds == 3);
  // Numbers by hand: d_seed = 0.05, 0.1, 0.025; d_problem = 0, 0.0666.., 0.0333.., 0.1333..
  CHECK(mean_d == Approx(0.058333333333333333).epsilon(1e-12));

  // B = A + 0.1 everywhere: exactly −0.1 with SE 0, where the unpaired two-level SE counts both seed spreads.
  const at::Tensor x = grid(a);
  const SeededMeanSe shifted = seed_paired_difference(x, x + 0.1);
  CHECK(shifted.mean == Approx(-0.1).epsilon(1e-12));
  CHECK(shifted.se == Approx(0.0).margin(1e-15));
  CHECK(seeded_difference(x, x + 0.1).se > 0.1);
  CHECK_THROWS_WITH(seed_paired_difference(x, x.slice(0, 0, 2)), Catch::Contains("same seeds and problems"));
}
