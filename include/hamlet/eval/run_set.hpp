#pragma once
// The run files `hamlet compare` reads, gathered into methods and paired (compare.hpp computes on them): every file
// must hold the same paired problems (task, task options, split, problem seed, problem count, steps; checked); a
// method found in several files is one method with several meta-training seeds. Learned rows also carry the
// meta-training protocol recorded in their weight files, located next to the run files when the recorded path is
// from another clone. Run files of every schema version are read through io::read_run (docs/file_formats.md).
#include <optional>
#include <string>
#include <vector>

#include <ATen/ATen.h>

#include "hamlet/core/options.hpp"

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

}  // namespace hamlet::eval
