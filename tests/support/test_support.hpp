#pragma once
// Helpers shared by the test executables.
#include <ATen/ATen.h>

#include <filesystem>
#include <string>

namespace hamlet::test {

// A fresh empty directory under the system temp dir, removed when the object dies.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

// Directory with the prepared real data ($HAMLET_DATA_DIR, else the build's configured data directory).
std::filesystem::path data_dir();
// The repository's root (committed files under results/ and tests/ are read from there).
std::filesystem::path source_dir();
// Path of the built hamlet executable ($HAMLET_BIN, else <build>/hamlet).
std::string hamlet_binary();

// Max |a - b| as a double.
double max_abs_diff(const at::Tensor& a, const at::Tensor& b);
// Max |a − b| / (1 + |b|) as a double: relative for large values, absolute near zero (b is the reference).
double max_rel_diff(const at::Tensor& a, const at::Tensor& b);

// Runs a shell command, capturing stdout+stderr; returns the exit code.
int run_command(const std::string& command, std::string* output = nullptr);

}  // namespace hamlet::test
