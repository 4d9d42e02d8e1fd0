#pragma once
// The writer of the run-file kinds (run_file.hpp, meta_train_file.hpp): opened at construction, so an unwritable
// path fails before the run (hamlet::Error naming it); write() writes the whole record and commits the file
// atomically (H5Writer), once.
#include <memory>
#include <string>

namespace hamlet::io {

class H5Writer;

template <typename Record>
class RecordFileWriter {
 public:
  explicit RecordFileWriter(const std::string& path);
  ~RecordFileWriter();
  RecordFileWriter(const RecordFileWriter&) = delete;
  RecordFileWriter& operator=(const RecordFileWriter&) = delete;
  void write(const Record& record);

 private:
  std::unique_ptr<H5Writer> writer_;
};

}  // namespace hamlet::io
