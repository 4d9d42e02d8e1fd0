#pragma once
// A task defined outside hamlet: "csv-classifier", a small MLP trained as a binary classifier on the rows of a CSV
// file (docs/extending.md, "Bring your own task"). Everything here uses hamlet's installed public headers only.
//
// The data file: a header line of column names, then one row per example: D numbers (the features) and a label,
// 0 or 1, in the last column, e.g. "x1,x2,label" over "0.9123,0.1180,0". two_moons.csv next to this file is such a
// file (make_two_moons.py writes it).
//
// The problems. Rows are split into three disjoint pools by their position r in the file (0-based, header not
// counted): r mod 5 = 3 is validation, r mod 5 = 4 is test, the other three fifths train. So the learned optimizer
// never sees a test row while it is meta-trained, and the learning rate of Adam is tuned on rows that the final
// numbers do not use. Problem i of (split, seed) draws, from its own generator tasks::problem_seed(split, seed, i):
// which `examples` rows of its split's pool it fits (without replacement), then its initial weights. Features are
// standardised with the mean and standard deviation of the train pool, so files with features of any scale work.
//
// The model: logits z = w1ᵀ tanh(W0ᵀ x + b0) + b1 with `hidden` units, the loss the mean binary cross-entropy over
// the problem's rows (full batch: the loss does not depend on the step).
#include <cstdint>
#include <memory>
#include <string>

#include <ATen/ATen.h>

#include "hamlet/core/option_spec.hpp"
#include "hamlet/tasks/task.hpp"

namespace custom_task {

struct CsvClassifierOptions {
  std::string data;       // path of the CSV file (required: the program passes its --data)
  int64_t hidden = 8;     // hidden tanh units of the MLP
  int64_t examples = 48;  // rows per problem, drawn from its split's pool; at most the smallest pool's size
  HAMLET_OPTIONS(CsvClassifierOptions);
};

// The file as the task holds it: standardised features and labels, each split's rows.
struct CsvTable {
  at::Tensor features;  // [N, D] float64, standardised with the train pool's mean and standard deviation
  at::Tensor labels;    // [N] float64, 0 or 1
  at::Tensor pool[3];   // row indices [n_split] int64 of tasks::Split kTrain, kValidation, kTest
};

// Reads `path` (layout above). Throws hamlet::Error naming the file, and the line where one does not fit: a missing
// file, a row with another number of columns than the header, a value that is not a number, a label other than
// 0 or 1, fewer than 5 rows, or a feature that is constant over the train pool.
CsvTable read_csv_table(const std::string& path);

class CsvClassifierTask final : public hamlet::tasks::Task {
 public:
  // Reads the file once; every sample() then indexes the table. Throws hamlet::Error for invalid options, an
  // unreadable file and `examples` larger than a pool.
  explicit CsvClassifierTask(CsvClassifierOptions options);
  std::string name() const override { return "csv-classifier"; }
  hamlet::OptionMap options() const override { return options_.to_map(); }
  // Per problem: its rows, their labels, and one [examples, hidden] layer of activations in float32.
  int64_t data_bytes_per_problem() const override;
  // Problems [first, first + count) of (split, seed): parameters {W0 [B, D, H], b0 [B, H], w1 [B, H], b1 [B]}, W0
  // and w1 drawn as LibTorch's default Linear initialisation, U(−1/√fan_in, 1/√fan_in), the biases zero.
  std::unique_ptr<hamlet::tasks::ProblemBatch> sample(hamlet::tasks::Split split, uint64_t seed, int64_t first,
                                                      int64_t count, c10::Device device) const override;
  int64_t features() const { return table_.features.size(1); }
  int64_t pool_size(hamlet::tasks::Split split) const { return table_.pool[static_cast<int>(split)].size(0); }

 private:
  CsvClassifierOptions options_;
  CsvTable table_;
};

// Adds "csv-classifier" to hamlet's task registry, so that hamlet::tasks::make_task("csv-classifier", {{"data",
// PATH}, ...}) builds the task with its options parsed and checked like a built-in one's. Idempotent.
void register_csv_classifier();

}  // namespace custom_task
