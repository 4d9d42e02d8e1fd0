#pragma once
// Run files of `hamlet evaluate` and `hamlet tune`: the one writer and the one reader (docs/file_formats.md,
// "Run file"). The records are plain data; the commands fill them from their results and `compare`, `export`
// and the Python package read them back.
//
// kRunFileSchema changelog (root attribute schema_version):
//   0  no schema_version: every file before the attribute existed. Options attributes are JSON objects, or "k=v, k=v" text
//      in files written before 2026-12-01; no content_checksum before 2026-12-07; the earliest files may lack
//      task_options. Datasets contiguous.
//   1  schema_version = 1; options always JSON; content_checksum always present; numeric datasets chunked and
//      compressed (shuffle + deflate, h5py reads them unchanged). Names, paths and values as in version 0.
#include <ATen/ATen.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "hamlet/core/options.hpp"
#include "hamlet/io/record_file.hpp"

namespace hamlet::io {

constexpr int64_t kRunFileSchema = 1;

class H5Writer;
class H5Reader;

// Root attributes of every run file (evaluate, tune and meta-train), as written.
struct RunHeader {
  std::string kind;            // "evaluate", "tune" or "meta-train"
  std::string hamlet_version;  // hamlet's version
  std::string dependencies;    // LibTorch, HDF5, Boost, spdlog versions
  std::string command;         // the command line
  std::string config;          // the fully resolved configuration as INI text (--config reruns it)
  std::string created_utc;     // ISO 8601
  std::string task;            // task name
  OptionMap task_options;      // resolved task options (empty when a version 0 file has none)
};

// /methods/<m>/tune: a learning-rate (learned optimizers: out_mul) search on validation problems.
struct TuneRecord {
  std::vector<double> grid;    // [G] values tried
  std::vector<double> scores;  // [G] their validation scores (inf = diverged)
  double best_lr = 0, best_score = 0;
  std::string criterion = "mean over validation problems of the mean logged loss";
};

// One method of a run, /methods/<name>. An evaluate file holds everything but `tune` (tune too when the run
// tuned); a tune file holds only `tune` (loss undefined, the other fields at their defaults). Of an evaluated
// method the reader requires `loss` and `options`; parts a hand-made file lacks stay undefined or 0, and the
// writer leaves undefined final_loss / grad_norm / update_norm out.
struct MethodRecord {
  std::string name;
  OptionMap options;           // resolved optimizer options, with the learning rate used
  at::Tensor loss;             // [problems, steps] float64: F(θ_t) before update t
  at::Tensor final_loss;       // [problems]: F(θ_K) after the last update
  at::Tensor grad_norm;        // [problems, steps]
  at::Tensor update_norm;      // [problems, steps]
  std::map<std::string, at::Tensor> diagnostics;  // [problems, steps] each
  double seconds = 0;
  double final_mean = 0, final_se = 0, final_median = 0, mean_over_steps = 0, mean_over_steps_se = 0;
  int64_t non_finite = 0;      // problems whose loss became non-finite
  bool random_init = false;    // a learned optimizer evaluated without weights
  std::optional<TuneRecord> tune;

  bool evaluated() const { return loss.defined(); }
};

struct RunRecord {
  RunHeader header;
  std::string split;                   // "test", "validation", ...
  int64_t seed = 0, problems = 0, steps = 0;
  std::string device;                  // torch device
  std::optional<bool> tuned;           // evaluate: whether learning rates were tuned
  std::string summary_table;           // evaluate: the printed Markdown table ("" = not written)
  std::vector<MethodRecord> methods;   // in run order (/method_names)
  int64_t schema_version = kRunFileSchema;  // as read; the writer always writes kRunFileSchema
};

// The one writer of run files (record_file.hpp).
using RunFileWriter = RecordFileWriter<RunRecord>;
extern template class RecordFileWriter<RunRecord>;

// Reads a run file of any schema version up to kRunFileSchema; datasets come back as float64 CPU tensors. Throws
// hamlet::Error naming the file when it is no evaluate/tune run file (no /methods group), its content does not
// match its checksum, it is newer than this hamlet, or a required attribute is missing.
RunRecord read_run(const std::string& path);

}  // namespace hamlet::io
