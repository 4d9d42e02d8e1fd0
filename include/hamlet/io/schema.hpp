#pragma once
// What every kind of hamlet file shares beyond HDF5 (docs/file_formats.md, "Versions and compatibility"): the root
// attribute `schema_version`, the content check, and the text form of recorded options. The compatibility rules
// for older files live here and in the readers beside this header, nowhere else.
//
// Versions: each kind counts its own (kRunFileSchema, kMetaTrainFileSchema, kWeightsFileSchema,
// kCheckpointSchema). A file without `schema_version` was written before the attribute existed and is version 0;
// a reader accepts every version up to its kind's current one and refuses a newer file, naming the file and both
// versions.
#include <cstdint>
#include <string>

#include "hamlet/core/options.hpp"
#include "hamlet/io/h5.hpp"

namespace hamlet::io {

constexpr const char* kSchemaVersionAttribute = "schema_version";

// Writes `version` as the root attribute schema_version (int64).
void write_schema_version(H5Writer& writer, int64_t version);

// The schema version of the open file (0 without the attribute). Throws hamlet::Error naming the file, `kind`
// ("run file", "weights file", ...) and both versions when it is newer than `current`, or when the attribute is
// not a non-negative integer.
int64_t read_schema_version(const H5Reader& reader, const std::string& kind, int64_t current);

// Refuses (hamlet::Error naming the file and `kind`) content that does not match its checksum. A file without a
// checksum is accepted only at version 0 (files written before 2026-12-07); with `warn_unchecked` it is logged
// once per file and process, as weights and checkpoints are.
void check_content(const H5Reader& reader, const std::string& kind, int64_t version, bool warn_unchecked);

// Options recorded in an attribute (`options`, `task_options`, `meta_train`, ...): a JSON object with string values
// (numbers and booleans read as text). Version 0 files written before 2026-12-01 hold "k=v, k=v" text instead,
// which is read at version 0 only. Throws naming `what` when the text is neither.
OptionMap read_options_text(const std::string& text, int64_t version, const std::string& what);

// A root or group attribute as text whatever its stored type (strings as stored, integers in decimal, floats as
// format_number renders them), for provenance written by several hamlet versions.
std::string attribute_text(const H5Reader& reader, const std::string& object, const std::string& name);

}  // namespace hamlet::io
