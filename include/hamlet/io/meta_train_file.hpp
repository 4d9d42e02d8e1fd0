#pragma once
// Meta-training run files (`hamlet meta-train --out`): the one writer and the one reader (docs/file_formats.md,
// "Meta-training run file"). The weights themselves go to a weights file (weights_file.hpp).
//
// Layout: the run-file root attributes (run_file.hpp's RunHeader, kind "meta-train") plus optimizer,
// architecture, optimizer_options (JSON), num_params, weights_file; /meta_train/curve [epochs, 8] float64 with
// the attribute `columns`; attributes of /meta_train: initial_score, best_score, best_epoch, meta_steps,
// skipped_steps, cut_trajectories, undefined_steps, optimizee_steps, train_seconds, seconds, ranks.
//
// kMetaTrainFileSchema changelog (root attribute schema_version):
//   0  no schema_version: every file before the attribute existed. Options JSON, or "k=v, k=v" text before 2026-12-01;
//      curves of 7 columns and no undefined_steps, optimizee_steps, train_seconds, ranks in the first files (read
//      as 0 and ranks 1); no content_checksum before 2026-12-07.
//   1  schema_version = 1; options always JSON; content_checksum always present; curve always 8 columns;
//      datasets of at least kMinCompressedValues values chunked and compressed.
//   2  /meta_train/component_scores [epochs, K] float64 and /meta_train/component_names (K strings) when the task
//      is a distribution of K tasks (tasks/mixture.hpp); absent otherwise.
#include <ATen/ATen.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "hamlet/core/options.hpp"
#include "hamlet/io/run_file.hpp"

namespace hamlet::io {

constexpr int64_t kMetaTrainFileSchema = 2;
// Columns of /meta_train/curve, as its `columns` attribute names them.
constexpr const char* kMetaTrainCurveColumns =
    "epoch, train_meta_loss, validation_score, grad_norm, skipped_steps, cut_trajectories, seconds, undefined_steps";

struct MetaTrainRunRecord {
  RunHeader header;             // kind "meta-train"
  std::string optimizer;        // learned optimizer's registry name
  std::string architecture;
  OptionMap optimizer_options;  // its resolved options
  int64_t num_params = 0;
  std::string weights_file;     // where the selected weights were written
  at::Tensor curve;             // [epochs, 8] float64 (kMetaTrainCurveColumns)
  // A distribution of tasks: each component's validation score per epoch, [epochs, K] float64, and the components'
  // names (K); undefined and empty for a single task.
  at::Tensor component_scores;
  std::vector<std::string> component_names;
  double initial_score = 0, best_score = 0;
  int64_t best_epoch = 0;
  int64_t meta_steps = 0, skipped_steps = 0, cut_trajectories = 0, undefined_steps = 0, optimizee_steps = 0;
  double train_seconds = 0, seconds = 0;
  int64_t ranks = 1;            // data-parallel ranks
  int64_t schema_version = kMetaTrainFileSchema;  // as read; the writer always writes kMetaTrainFileSchema
};

// The one writer of meta-training run files (record_file.hpp).
using MetaTrainFileWriter = RecordFileWriter<MetaTrainRunRecord>;
extern template class RecordFileWriter<MetaTrainRunRecord>;

// Reads any schema version up to kMetaTrainFileSchema; throws hamlet::Error naming the file when it is no
// meta-training run file, does not match its checksum or is newer than this hamlet.
MetaTrainRunRecord read_meta_train_run(const std::string& path);

}  // namespace hamlet::io
