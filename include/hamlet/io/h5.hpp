#pragma once
// HDF5 output and input (HDF5 C++ API): the groups, datasets and attributes every hamlet file is made of. What a
// run file, meta-training run file, weights file or checkpoint holds is owned by the readers and writers beside
// this header (run_file.hpp, meta_train_file.hpp, weights_file.hpp, checkpoint_file.hpp; docs/file_formats.md).
//
// H5Writer writes to "<path>.tmp-<pid>" and renames to `path` only in commit(), so a failed or interrupted run
// never leaves a half-written file under the final name; a writer destroyed without commit() deletes its
// temporary file. Datasets are created with their parent groups; attributes are strings, doubles or integers.
// Extendible datasets ([rows, columns], unlimited rows, chunked) are appended row by row, for curves that grow
// during a run (the HighFive pattern).
//
// Storage: numeric datasets of at least kMinCompressedValues values are chunked (chunks of whole rows, about
// 1 MiB at most) and compressed losslessly with the shuffle and deflate (level 4) filters, which every HDF5
// reader (h5py included) decodes without options; smaller ones, empty ones and string datasets are contiguous. The
// values are unchanged (float64 stays float64); if the HDF5 library lacks deflate every dataset is contiguous.
// Readers read both layouts (files of schema version 0 hold only contiguous ones).
//
// Checksum: commit() stores, as the root attribute `content_checksum` ("fnv1a64:<16 hex digits>"), a 64-bit FNV-1a
// digest of the file's content: every group, dataset and attribute in name order, with each dataset's type class,
// shape and values and each attribute's value (the checksum attribute itself left out). It is a property of the
// content, not of HDF5's byte layout, so a reader recomputes it through the same walk. A byte changed in stored
// data (a flipped bit on disk, an edit by hand) makes integrity() report kMismatch, and io::check_content
// (schema.hpp) refuse the file; files written before hamlet stored checksums have none.
#include <ATen/ATen.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace hamlet::io {

// Below this many values (32 KiB of float64) a chunked dataset's index, about 2 KiB in HDF5's default file format,
// costs more than deflate saves on float64 values (measured: loss curves shrink to about 45 %, random weights
// hardly at all), so weights files and checkpoints stay contiguous and run files' curves are compressed.
constexpr int64_t kMinCompressedValues = 4096;

// Opens (and discards) a writer for `path`: throws hamlet::Error naming it if it cannot be written. For commands
// that should fail on an unwritable output before hours of work.
void check_writable(const std::string& path);

// How a dataset is stored (H5Reader::layout).
struct DatasetLayout {
  bool chunked = false;
  bool shuffle = false;
  bool deflate = false;
};

class H5Writer {
 public:
  // Opens the temporary file next to `path`. Throws hamlet::Error naming the path if it cannot be created.
  explicit H5Writer(std::string path);
  ~H5Writer();
  H5Writer(const H5Writer&) = delete;
  H5Writer& operator=(const H5Writer&) = delete;

  // Writes a dense dataset at `dataset_path` ("/quadratic/adam/loss"); values are stored as float64
  // (floating tensors) or int64 (integral tensors), any rank >= 1.
  void write(const std::string& dataset_path, const at::Tensor& values);
  void write_strings(const std::string& dataset_path, const std::vector<std::string>& values);
  // Attributes on a group or dataset (created as a group if it does not exist).
  void set_attribute(const std::string& object_path, const std::string& name, const std::string& value);
  void set_attribute(const std::string& object_path, const std::string& name, const char* value);
  void set_attribute(const std::string& object_path, const std::string& name, double value);
  void set_attribute(const std::string& object_path, const std::string& name, int64_t value);
  // Extendible float64 dataset [0, columns] with unlimited rows, appended one row at a time.
  void create_extendible(const std::string& dataset_path, int64_t columns);
  void append_row(const std::string& dataset_path, const std::vector<double>& row);
  // Closes and renames the temporary file to the final path.
  void commit();
  const std::string& path() const { return path_; }

 private:
  struct Impl;
  std::string path_;
  std::string temp_path_;
  std::unique_ptr<Impl> impl_;
};

class H5Reader {
 public:
  // Throws hamlet::Error naming the file if it is missing or not HDF5.
  explicit H5Reader(const std::string& path);
  ~H5Reader();
  bool exists(const std::string& object_path) const;
  // Reads a float64 or int64 dataset into a CPU tensor of that dtype.
  at::Tensor read(const std::string& dataset_path) const;
  std::vector<std::string> read_strings(const std::string& dataset_path) const;
  bool has_attribute(const std::string& object_path, const std::string& name) const;
  std::string attribute_string(const std::string& object_path, const std::string& name) const;
  double attribute_double(const std::string& object_path, const std::string& name) const;
  int64_t attribute_int(const std::string& object_path, const std::string& name) const;
  // Names of the members of a group, in HDF5's (alphabetical) order.
  std::vector<std::string> children(const std::string& group_path) const;
  // Whether `object_path` is a group (else a dataset; it must exist).
  bool is_group(const std::string& object_path) const;
  // Names of the attributes of a group or dataset, sorted, and the kind of one: 's' string, 'f' floating,
  // 'i' integer, '?' anything else (hamlet writes only the first three).
  std::vector<std::string> attribute_names(const std::string& object_path) const;
  char attribute_kind(const std::string& object_path, const std::string& name) const;
  DatasetLayout layout(const std::string& dataset_path) const;
  const std::string& path() const { return path_; }
  // Whether the file carries a content checksum, and whether it matches (see the header comment).
  enum class Integrity { kValid, kNoChecksum, kMismatch };
  Integrity integrity() const;

 private:
  struct Impl;
  std::string path_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace hamlet::io
