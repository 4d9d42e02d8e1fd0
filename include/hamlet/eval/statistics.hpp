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

// ---- Meta-training seeds as a second level (docs/methods.md §12) ----
// A learned optimizer's per-problem metric is x[s, i] for meta-training seed s = 0..S−1 and paired problem
// i = 0..N−1 ([S, N]); a hand-designed optimizer is the case S = 1.
struct SeededMeanSe {
  double mean = 0, se = 0;  // over seeds and problems
  int64_t seeds = 0, problems = 0;  // for a difference: the larger of the two methods' seed counts
  double problem_se = 0;    // the problem-only part s/√N (what a one-level SE would report)
};
// Mean and two-level SE of one method: SE² = s_a²/N + v/S, with a_i = mean_s x[s, i], s_a² the sample variance of
// a_i over problems, v the sample variance over seeds of the per-seed means mean_i x[s, i] (0 when S = 1).
SeededMeanSe seeded_mean_se(const at::Tensor& x);
// Paired difference D = mean_i (a_i − b_i) of two methods on the same N problems ([S_A, N] and [S_B, N]) with the
// conservative two-level SE² = s_d²/N + v_A/S_A + v_B/S_B (docs/methods.md §12; S = 1 reduces it to the paired SE).
SeededMeanSe seeded_difference(const at::Tensor& a, const at::Tensor& b);
// The same difference for two rows that evaluate the *same* meta-trained weights seed by seed (e.g. one learned
// optimizer at its trained and at a tuned out_mul): seed s of A and seed s of B share their seed effect, so it
// cancels in d[s, i] = a[s, i] − b[s, i], and SE² = s_d²/N + v_d/S with d_i = mean_s d[s, i] and v_d the sample
// variance over seeds of the per-seed means of d (the one-method formula applied to d). Needs S_A = S_B.
SeededMeanSe seed_paired_difference(const at::Tensor& a, const at::Tensor& b);

// §12 verdict on a difference A − B of losses: kABetter when D < −2 SE, kBBetter when D > 2 SE, else kTie (also when
// D is not finite). Exactly 2 SE is a tie.
enum class Verdict { kABetter, kTie, kBBetter };
Verdict verdict(double difference, double se);
// Joint SE against a published single unpaired draw of `runs` runs (§12): √(se² + (sd/√runs)²), where sd is our
// per-problem standard deviation of the method (the paper's spread assumed equal to ours).
double joint_se_vs_published(double se, double per_problem_sd, int64_t runs = 100);

}  // namespace hamlet::eval
