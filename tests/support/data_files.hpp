#pragma once
// Files for the data tests: the check that prepared real data is there (the tests of it skip, with a warning, on a
// machine without it) and small hand-written inputs.
#include <filesystem>
#include <fstream>
#include <string>

#include "support/catch.hpp"

namespace hamlet::test {

// Whether the prepared data file or directory `path` exists; if not, a warning names it and the way to fetch it, and
// the caller returns before its checks of the real data.
inline bool have_data(const std::filesystem::path& path) {
  if (std::filesystem::exists(path)) return true;
  WARN("no " << path.string() << "; run scripts/fetch_data.sh");
  return false;
}

// Writes `bytes` to `path` exactly (binary: no newline translation), replacing the file; returns the path.
inline std::string write_text(const std::filesystem::path& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
  return path.string();
}

}  // namespace hamlet::test
