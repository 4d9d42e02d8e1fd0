#pragma once
// `hamlet compare`: the comparison tables behind every published verdict, computed from evaluate run files.
//
// Input: any number of run files (io/run_file.hpp, docs/file_formats.md) evaluated on the same paired problems (same task, split,
// problem seed, problem count and steps; checked). A method that appears in several files is one method with
// several meta-training seeds, one per file (e.g. learned_seed0.h5 .. learned_seed4.h5); a hand-designed optimizer
// appears once. The metric is the loss at the last logged step, F(θ_{K−1}) (the paper's table metric).
//
// Statistics (docs/methods.md §12): a method's mean is over seeds and problems; its SE and the SE of every paired
// difference count both levels, SE² = s²/N + Σ v/S (hamlet's conservative two-level default, seeded_difference in
// statistics.hpp). With one seed this is the ordinary paired SE and the table says "problem noise only".
//
// Reference: the Δ column is measured against the hand-designed method with the best *validation* score (the
// tuner's best_score on validation problems, /methods/<m>/tune), never the best test mean; `reference` = a method
// name fixes it instead. Verdicts: "A beats B" when Δ < −2 SE, "B beats A" when Δ > 2 SE, else tie (exactly 2 SE is
// a tie).
//
// Two learned rows that evaluate the same weight files seed by seed (same contents, in the order given; e.g. trained
// and tuned out_mul) are paired by seed as well: their Δ uses seed_paired_difference, and the row says so.
//
// Published numbers (`published`, method -> value) are single unpaired draws: "vs paper" is tested against the
// joint SE √(SE² + (sd/√runs)²), sd our per-problem standard deviation (§12).
//
// Run files of every schema version are read through io::read_run, which also refuses damaged ones.
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <ATen/ATen.h>

#include "hamlet/core/option_spec.hpp"
#include "hamlet/core/options.hpp"
#include "hamlet/eval/statistics.hpp"

namespace hamlet::eval {

// One method gathered over the run files that hold it.
struct MethodRuns {
  std::string name;
  std::vector<std::string> files;          // one per meta-training seed, in the order given
  at::Tensor final_loss;                   // [S, N] float64: loss at the last logged step per seed and problem
  at::Tensor mean_over_steps;              // [S, N] float64: per-problem mean of the logged losses
  at::Tensor first_loss;                   // [S, N] float64: loss at step 0, before any update
  std::vector<OptionMap> options;          // resolved optimizer options, per seed
  bool learned = false;                    // its options carry out_mul and no lr
  std::optional<double> validation_score;  // the tuner's best validation score (hand-designed, tuned)
  OptionMap protocol;                      // meta-training protocol read from the learned optimizer's weight file
  std::vector<OptionMap> seed_protocols;   // learned: the protocol of each seed's weight file (empty if none found)
  std::vector<std::string> weights;        // learned: the weight file of each seed as found on disk ("" if not found)
};

struct RunSet {
  std::string task, split;
  // The task's recorded options that define its problems (dim, activation, dataset, dtype, ...); keys that only
  // locate data on one machine (data_dir, data_source) are left out, so a run and its rerun elsewhere still pair.
  OptionMap task_options;
  int64_t problem_seed = 0, problems = 0, steps = 0;
  std::vector<MethodRuns> methods;  // in order of first appearance
};

// Throws hamlet::Error unless `b` (read from `b_path`) holds the problems of `a` (from `a_path`): same task, task
// options, split, problem seed, number of problems and steps. The message names the first differing setting and
// both values. compare and drift pair problems by index, so this is what makes a paired difference meaningful.
void check_same_problems(const RunSet& a, const std::string& a_path, const RunSet& b, const std::string& b_path);

// One run file to read, with an optional row label. Without a label a method keeps its name, so the same learned
// optimizer in several files is one row with several meta-training seeds. A label renames the file's methods: the
// text "{method}" in it is replaced by the method's name, and a label without "{method}" names the file's one
// method (a file of several methods is then an error). Files with the same label are that row's seeds, so runs of
// one optimizer with different estimators or budgets become different rows.
struct RunInput {
  std::string path;
  std::string label;  // empty: the methods keep their names
};
// "FILE" or "FILE:LABEL" (split at the last ':'; "FILE:" for a path that itself contains ':').
RunInput parse_run_input(const std::string& text);
// The row name of `method` read from a file given with `label`.
std::string row_name(const std::string& label, const std::string& method);

// Reads and pairs the run files; throws naming the file when one does not fit the others (another task, split,
// problem seed, problem count or number of steps) or holds a row twice.
RunSet read_runs(const std::vector<RunInput>& inputs);
RunSet read_runs(const std::vector<std::string>& paths);

struct CompareOptions {
  std::string reference = "validation";     // "validation" or a method name
  std::map<std::string, double> published;  // method -> published number (e.g. docs/methods.md §9.1)
  int64_t published_runs = 100;             // runs behind each published number
  std::string title;                        // table heading
  // Meta-training keys a weight file may predate, with the value they had before the option existed, shown in the
  // protocol column when a located weight file does not record them (the CLI passes the default estimator).
  OptionMap protocol_defaults;
  // spec(): reference, title, published_runs (published is parsed by the caller).
  HAMLET_OPTIONS(CompareOptions);
};

struct ComparisonRow {
  std::string name;
  bool learned = false;
  std::string scale;                 // "lr 0.03" or "out_mul 0.1"; seeds at different scales (out_mul tuned per
                                     // seed): "out_mul 0.3 / 0.1 / 0.3", in the order of the files
  SeededMeanSe final_loss;           // mean ± two-level SE
  double median = 0;                 // median over problems of the seed-averaged final loss
  double mean_over_steps = 0;
  std::vector<double> seed_means;    // per-seed mean final loss
  int64_t non_finite = 0;            // problems with a non-finite final loss in any seed
  int64_t above_start = 0;           // runs (seed × problem) whose final loss is not below the problem's loss at
                                     // step 0, non-finite ones included: the optimizer left the problem no better
  int64_t runs = 0;                  // seeds × problems
  std::optional<SeededMeanSe> delta; // this − reference (absent on the reference row)
  bool delta_seed_paired = false;    // the reference is a learned row with the same weights per seed
  Verdict verdict = Verdict::kTie;   // of delta: kABetter = this row beats the reference
  std::optional<double> published;
  double vs_published = 0, vs_published_se = 0;
  std::string protocol;              // what differs between rows: options, meta-training budget, estimator,
                                     // meta_lr and cut_trajectories (one value, or each seed's: "a / b / c")
};

struct PairRow {
  std::string a, b;
  SeededMeanSe delta;  // a − b
  Verdict verdict = Verdict::kTie;
  bool seed_paired = false;  // a and b evaluate the same weights per seed (seed_paired_difference)
};

struct Comparison {
  std::string title, task, split;
  int64_t problems = 0, steps = 0, problem_seed = 0;
  std::string reference;         // method name
  std::string reference_reason;  // "best validation score 0.43" or "fixed by --reference"
  std::vector<ComparisonRow> rows;
  std::vector<PairRow> learned_pairs;  // every pair of learned methods
};

Comparison compare(const RunSet& runs, const CompareOptions& options);

// ---- Machine drift: the same evaluation rerun (another CPU, build or day) against a committed run ----
struct DriftRow {
  std::string name;
  double max_step0 = 0, max_final = 0;  // largest per-problem |rerun − committed| of the first and the final logged loss
  double committed_mean = 0, committed_se = 0, rerun_mean = 0;
  MeanSe delta;                         // paired rerun − committed final loss over problems
  double shift_in_se = 0;               // (rerun_mean − committed_mean) / committed_se
  int64_t moved = 0;                    // problems whose final loss moved by more than the threshold
};
struct Drift {
  std::string committed, rerun;
  int64_t problems = 0;
  double threshold = 0.05;
  std::vector<DriftRow> rows;  // methods present in both files, in the committed file's order
};
// Pairs two run files of the same problems method by method; throws naming the files when they do not pair.
Drift drift(const std::string& committed, const std::string& rerun, double threshold = 0.05);
std::string to_markdown(const Drift& drift);

std::string to_markdown(const Comparison& comparison);
std::string to_csv(const Comparison& comparison);
std::string to_json(const Comparison& comparison);

}  // namespace hamlet::eval
