#pragma once
// Meta-training checkpoints (`hamlet meta-train --checkpoint`): the one writer and the one reader
// (docs/file_formats.md, "Checkpoint"). The record is plain data; meta/checkpoint.hpp converts the meta-training
// state to and from it.
//
// Layout: /weights/<i> and /best_weights/<i> (float64; group attribute `count`), /meta_state (attribute `step`)
// with /meta_state/slots/<name>/<i> (attribute `count`) and /meta_state/scalars/<name>, /curve [epochs, 8]
// float64, root attributes epoch, best_score, best_epoch, initial_score, meta_steps, skipped_steps,
// cut_trajectories, architecture, config.
//
// kCheckpointSchema changelog (root attribute schema_version):
//   0  no schema_version: every checkpoint before the attribute existed. Curves of 7 columns before undefined_steps existed
//      (read with that column 0); no content_checksum before 2026-12-07 (loaded with a warning); `config` of the
//      first checkpoints holds only "k=v, k=v" meta-training options (meta::check_resume_config refuses to resume
//      those).
//   1  schema_version = 1; content_checksum always present; curve always 8 columns; datasets of at least
//      kMinCompressedValues values chunked and compressed.
//   2  /component_scores [epochs, K] float64 when the task is a distribution of K tasks (tasks/mixture.hpp): each
//      component's validation score per epoch, so a resumed run keeps them. Absent otherwise, as in 0 and 1.
#include <ATen/ATen.h>

#include <cstdint>
#include <map>
#include <string>

#include "hamlet/core/tensor.hpp"

namespace hamlet::io {

constexpr int64_t kCheckpointSchema = 2;
// Columns of /curve (meta::EpochRecord in declaration order).
constexpr int64_t kCheckpointCurveColumns = 8;

struct CheckpointRecord {
  int64_t epoch = 0;                  // completed epochs
  TensorList weights, best_weights;   // float64 as read
  int64_t meta_step = 0;              // the meta-optimizer's step counter
  std::map<std::string, TensorList> meta_slots;    // per-weight buffers of the meta-optimizer
  std::map<std::string, at::Tensor> meta_scalars;  // its per-run scalars
  at::Tensor curve;                   // [epochs, 8] float64 as read (older 7-column curves padded with zeros)
  at::Tensor component_scores;        // [epochs, K] float64, or undefined (a single task; files before version 2)
  double best_score = 0, initial_score = 0;
  int64_t best_epoch = 0, meta_steps = 0, skipped_steps = 0, cut_trajectories = 0;
  std::string architecture;           // of the optimizer being trained
  std::string config;                 // resolved configuration, "key=value" lines (meta/run_config.hpp)
  int64_t schema_version = kCheckpointSchema;  // as read; the writer always writes kCheckpointSchema
};

// Writes atomically (a run killed mid-write leaves the previous checkpoint intact).
void write_checkpoint(const std::string& path, const CheckpointRecord& record);
// Throws hamlet::Error naming the file when it is no checkpoint, does not match its checksum, or is newer than
// this hamlet.
CheckpointRecord read_checkpoint(const std::string& path);

}  // namespace hamlet::io
