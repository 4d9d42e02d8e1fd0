#pragma once
// A held-out evaluation suite (`hamlet compare --mode=suite`): many tasks, each a set of paired run files as
// `hamlet compare` reads them (run_set.hpp), summarised per task and aggregated over the tasks.
//
// Per task, every method gets its final loss (mean ± two-level SE, compare.hpp), its seed-aware Δ against the
// hand-designed optimizer with the best validation score and against the normaliser (tuned Adam by default), and its
// normalised score. Over the tasks, each method gets the interquartile mean (IQM) of its normalised scores with a
// stratified bootstrap confidence interval, and the number of tasks where it diverged. The aggregate follows
// rliable (Agarwal et al., "Deep Reinforcement Learning at the Edge of the Statistical Precipice", NeurIPS 2021:
// IQM over pooled task × run scores, stratified bootstrap CIs) as Celo (Moudgil et al., "Celo: Training Versatile
// Learned Optimizers on a Compute Diet", TMLR 2025, arXiv:2501.12670) uses it for learned optimizers: the final
// loss relative to tuned Adam's, here as the ratio loss / Adam's loss (below 1: better than Adam). Definitions, with the trimming rule and the resampling scheme, in docs/methods.md §12.
//
// Definitions (T tasks; method m has S_t meta-training seeds on task t, S_t = 1 for a hand-designed optimizer;
// N_t paired problems):
//   seed mean        m_{t,s} = mean_i final[s, i]            (the loss at the last logged step)
//   score            r_{t,s} = m_{t,s} / A_t,  A_t = the normaliser's mean final loss on t (must be finite, > 0);
//                    a non-finite m_{t,s} scores +∞ (the worst score)
//   diverged seed    m_{t,s} non-finite, or m_{t,s} ≥ mean_i loss[s, i] at step 0 (left its problems no better on
//                    average than it found them); a method diverges on t when any of its seeds does
//   IQM              interquartile_mean of the pooled scores {r_{t,s}} over all tasks and seeds
//   CI               percentile interval of the IQM over `resamples` stratified bootstrap resamples
//                    (bootstrap_iqm)
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "hamlet/core/option_spec.hpp"
#include "hamlet/eval/compare.hpp"
#include "hamlet/eval/run_set.hpp"
#include "hamlet/eval/statistics.hpp"

namespace hamlet::eval {

// ---- Robust aggregates ----

// The interquartile mean: the mean of the values between the first and the third quartile of their empirical
// distribution. Sorted x_(0) <= ... <= x_(n−1), value k covers [k/n, (k+1)/n] of the distribution and enters with
// the share of that interval inside [1/4, 3/4]:
//   IQM = Σ_k w_k x_(k) / (n/2),  w_k = |[k, k+1] ∩ [n/4, 3n/4]|  (in units of 1/n)
// When n is divisible by 4 this is the plain mean of the middle n/2 values; otherwise the two values on the
// quartiles enter with fractional weights (n = 5: 0.75 x_(1) + x_(2) + 0.75 x_(3), over 2.5), so the IQM moves
// continuously with the data. (scipy's trim_mean(x, 0.25), which rliable calls, instead drops ⌊n/4⌋ values at
// each end; the two agree when 4 divides n.) n = 1 gives x_(0). NaN counts as +∞; a value of weight 0 never enters
// (so one +∞ in the top quarter leaves the IQM finite), one of positive weight makes it +∞. Throws on no values.
double interquartile_mean(std::vector<double> values);

// The p-quantile (0 <= p <= 1) of values by linear interpolation between order statistics (Hyndman & Fan type 7,
// numpy's default): h = (n − 1) p, Q = x_(⌊h⌋) + (h − ⌊h⌋)(x_(⌊h⌋+1) − x_(⌊h⌋)). NaN counts as +∞, and a quantile
// that interpolates towards +∞ is +∞. Throws on no values or p outside [0, 1].
double quantile(std::vector<double> values, double p);

struct IqmInterval {
  double iqm = 0;          // of the scores as given
  double low = 0, high = 0;  // percentile bootstrap interval
  int64_t tasks = 0, scores = 0;
};
// IQM of the pooled scores (scores[t] = the scores of task t, one per seed) with a stratified bootstrap interval:
// each of `resamples` resamples draws T tasks with replacement and, for every drawn task, its S_t scores with
// replacement from that task's scores; the interval is the ((1 − confidence)/2, (1 + confidence)/2) quantile pair
// of the resampled IQMs. Draws come from std::mt19937_64 seeded with `seed` (its output is fixed by the C++
// standard) and are made unbiased by rejection, so an interval is the same on every machine. Throws on no tasks, a
// task without scores, resamples < 1 or a confidence outside (0, 1).
IqmInterval bootstrap_iqm(const std::vector<std::vector<double>>& scores, int64_t resamples, uint64_t seed,
                          double confidence = 0.95);

// ---- The suite ----

struct SuiteOptions {
  std::string normalizer = "adam";  // the method whose mean final loss divides every score, per task
  int64_t resamples = 2000;         // bootstrap resamples of the interval (rliable's default)
  uint64_t bootstrap_seed = 0;      // seed of the bootstrap draws
  double confidence = 0.95;         // coverage of the interval
  // spec(): normalizer, resamples, bootstrap_seed, confidence.
  HAMLET_OPTIONS(SuiteOptions);
};

// One task of a suite file: a label, a title and the run files (with optional row labels, RunInput) that hold its
// paired rows.
struct SuiteTask {
  std::string label, title;
  std::vector<RunInput> inputs;
};

// Reads a suite file. One task per line, fields separated by '|':
//   label | title | run files
// the run files separated by blanks, each FILE or FILE:ROW (RunInput: ROW names the file's method, and files with
// the same row name are that row's meta-training seeds). A relative FILE is relative to the suite file's
// directory. '#' starts a comment; blank lines are skipped. Throws naming the file and line on a malformed line, an
// empty label or file list, or a label given twice; throws on a file without tasks.
std::vector<SuiteTask> read_suite_file(const std::string& path);

// One method on one task.
struct SuiteTaskRow {
  std::string name;
  bool learned = false;
  SeededMeanSe final_loss;          // mean ± two-level SE (compare.hpp)
  std::vector<double> seed_means;   // m_{t,s}
  std::vector<double> scores;       // r_{t,s}
  double score = 0;                 // final_loss.mean / A_t
  std::optional<SeededMeanSe> delta_validation;  // this − the validation choice (absent on that row)
  Verdict verdict_validation = Verdict::kTie;
  std::optional<SeededMeanSe> delta_normalizer;  // this − the normaliser (absent on that row)
  Verdict verdict_normalizer = Verdict::kTie;
  int64_t diverged_seeds = 0;
};

struct SuiteTaskResult {
  std::string label, title, task;
  int64_t problems = 0, steps = 0;
  std::string validation_choice;   // the hand-designed method with the best validation score
  double validation_score = 0;     // its tuner score
  double normalizer_mean = 0;      // A_t
  std::vector<SuiteTaskRow> rows;  // in the order of the run files
};

// One method over the whole suite.
struct SuiteAggregateRow {
  std::string name;
  bool learned = false;
  IqmInterval iqm;                      // of r_{t,s} over every task and seed
  double median = 0;                    // median of the pooled scores (NaN/+∞ as +∞)
  int64_t diverged_tasks = 0;           // tasks with a diverged seed
  int64_t diverged_seeds = 0, seeds = 0;  // diverged (task, seed) pairs of all of them
  std::vector<std::string> diverged_on;  // the labels of those tasks
  int64_t beats = 0, ties = 0, loses = 0;  // verdicts against the validation choice over the tasks (its own row:
                                           // none; the "validation choice" row: none)
};

struct Suite {
  std::string title;
  SuiteOptions options;
  std::vector<SuiteTaskResult> tasks;
  // Every method found on every task, in order of first appearance, then the row "validation choice" (per task
  // the validation-chosen hand-designed optimizer's scores, the baseline a practitioner would have picked).
  std::vector<SuiteAggregateRow> aggregate;
  std::vector<std::string> not_aggregated;  // methods missing on some task: "NAME (k of T tasks)"
};

// The name of the aggregate row of the per-task validation choice.
inline constexpr const char* kValidationChoiceRow = "validation choice";

// Reads every task's run files (read_runs), compares them (compare() against the validation choice and against
// the normaliser; `compare_options` gives the protocol defaults) and aggregates. Throws naming the task when its
// files do not pair, it lacks the normaliser or a tuned hand-designed method, or the normaliser's mean final loss
// is not finite and positive.
Suite evaluate_suite(const std::vector<SuiteTask>& tasks, const SuiteOptions& options,
                     const CompareOptions& compare_options = CompareOptions());

// The suite as text: Markdown (the aggregate table first, then one table per task) and JSON (every field).
std::string to_markdown(const Suite& suite);
std::string to_json(const Suite& suite);

}  // namespace hamlet::eval
