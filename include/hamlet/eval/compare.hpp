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
//
// The parts: run_set.hpp reads and pairs the run files, this header computes the statistics and verdicts,
// compare_format.hpp renders them (Markdown, CSV, JSON), drift.hpp compares a rerun with a committed run.
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <ATen/ATen.h>

#include "hamlet/core/option_spec.hpp"
#include "hamlet/core/options.hpp"
#include "hamlet/eval/run_set.hpp"
#include "hamlet/eval/statistics.hpp"

namespace hamlet::eval {

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

}  // namespace hamlet::eval
