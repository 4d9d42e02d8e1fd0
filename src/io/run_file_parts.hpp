#pragma once
// Private to io: what the run-file kinds (evaluate/tune run files, meta-training run files) share on disk, the
// schema version and header at the root, and the body of RecordFileWriter. A kind defines
// `void write_record(H5Writer&, const Record&)` in namespace hamlet::io and instantiates RecordFileWriter<Record>.
#include <memory>
#include <string>

#include "hamlet/core/error.hpp"
#include "hamlet/io/h5.hpp"
#include "hamlet/io/record_file.hpp"
#include "hamlet/io/run_file.hpp"
#include "hamlet/io/schema.hpp"

namespace hamlet::io {

// Root attributes: schema_version = `schema`, then the header's.
void write_run_header(H5Writer& writer, const RunHeader& header, int64_t schema);

RunHeader read_run_header(const H5Reader& reader, int64_t version);

// Starts reading a run file of kind `kind` (the error's words: "run file"): refuses a file without the
// object `required` (its mark: "/methods"), reads the schema version (refusing one newer than `current`), checks
// the content and returns a Record with schema_version and header filled in.
template <typename Record>
Record read_run_start(const H5Reader& reader, const std::string& kind, const std::string& required, int64_t current) {
  HAMLET_CHECK(reader.exists(required), reader.path(), ": not a ", kind, " (no ", required, ")");
  Record record;
  record.schema_version = read_schema_version(reader, kind, current);
  // Files without a checksum are the committed results: read without a warning each time.
  check_content(reader, kind, record.schema_version, /*warn_unchecked=*/false);
  record.header = read_run_header(reader, record.schema_version);
  return record;
}

template <typename Record>
RecordFileWriter<Record>::RecordFileWriter(const std::string& path) : writer_(std::make_unique<H5Writer>(path)) {}

template <typename Record>
RecordFileWriter<Record>::~RecordFileWriter() = default;

template <typename Record>
void RecordFileWriter<Record>::write(const Record& record) {
  HAMLET_CHECK(writer_, "a run file's write() was called twice");
  write_record(*writer_, record);
  writer_->commit();
  writer_.reset();
}

}  // namespace hamlet::io
