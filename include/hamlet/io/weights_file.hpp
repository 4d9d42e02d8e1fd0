#pragma once
// Weights files of learned optimizers (`hamlet meta-train --weights-out`, loaded with
// --optimizer.NAME.weights=PATH): the one writer and the one reader (docs/file_formats.md, "Weights file"). The
// record is plain data; interop/learned_files.hpp converts it from and to a learned optimizer.
//
// Layout: /weights/<name> one float64 dataset per weight (float64 holds float32 and float64 weights exactly, so
// a round trip is bitwise); root attributes optimizer (registry name), architecture, options (JSON), num_params
// (int64), and the provenance: string attributes the caller chooses (meta-train writes task, task_options,
// meta_train, ranks, hamlet_version, command, best_epoch, best_score, cut_trajectories, skipped_steps).
//
// kWeightsFileSchema changelog (root attribute schema_version):
//   0  no schema_version: every file before the attribute existed. options, task_options and meta_train are JSON, or
//      "k=v, k=v" text in files written before 2026-12-01, whose meta_train also lacks `estimator` (they were all
//      meta-trained by the default estimator, which readers fill in: compare's protocol_defaults, select); no
//      content_checksum before
//      2026-12-07 (loaded with a warning); some lack ranks, cut_trajectories, skipped_steps.
//   1  schema_version = 1; options always JSON; content_checksum always present; weights datasets of at least
//      kMinCompressedValues values chunked and compressed.
#include <ATen/ATen.h>

#include <cstdint>
#include <string>
#include <vector>

#include "hamlet/core/options.hpp"
#include "hamlet/core/tensor.hpp"

namespace hamlet::io {

constexpr int64_t kWeightsFileSchema = 1;

struct WeightsRecord {
  std::string optimizer;       // learned optimizer's registry name ("phnn", "lstm", ...)
  std::string architecture;    // its architecture string; must match the optimizer a file is loaded into
  OptionMap options;           // resolved options it was trained with (never "weights")
  int64_t num_params = 0;      // total number of scalar weights
  std::vector<std::string> names;  // weight names ("V.0.weight", ...), names[i] <-> weights[i]
  TensorList weights;          // float64 CPU tensors as read; any floating dtype to write
  OptionMap provenance;        // further root attributes, as text (JSON for option maps)
  int64_t schema_version = kWeightsFileSchema;  // as read; the writer always writes kWeightsFileSchema
  std::string path;            // the file it was read from (for messages; ignored by the writer)
};

// Writes atomically. Throws hamlet::Error naming the file when names and weights differ in number or a provenance
// key is one of the record's own attributes (optimizer, architecture, options, num_params, schema_version,
// content_checksum); nothing is left behind then.
void write_weights(const std::string& path, const WeightsRecord& record);

enum class WeightsPart {
  kAll,         // everything, checked: a weights file (a run file or checkpoint given instead is named as such),
                // its content checksum, the required attributes
  kProvenance,  // root attributes and weight names only, unchecked: for tables that describe weights they do not
                // load (compare, select); attributes a file lacks stay empty
};
// Reads a weights file of any schema version up to kWeightsFileSchema; a newer one is refused naming both versions.
WeightsRecord read_weights(const std::string& path, WeightsPart part = WeightsPart::kAll);

// An option map of the provenance (`task_options`, `meta_train`) read in the form its version wrote; empty when
// absent.
OptionMap provenance_options(const WeightsRecord& record, const std::string& key);

}  // namespace hamlet::io
