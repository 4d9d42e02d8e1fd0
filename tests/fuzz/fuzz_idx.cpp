// Fuzz target: the IDX reader (data::read_idx), plain and gzip.
//
// Input: mode byte, then the file's bytes. mode % 3 == 0: the bytes are written as a plain IDX file; 1: they are
// written under a ".gz" name as they are (so read_idx meets data that is not, or is broken, gzip); 2: they are
// gzip-compressed first (a valid gzip stream, so the IDX checks run on the gzip path too). Raw bytes are the right
// input here: the IDX format is hamlet's own parser (zlib's inflate is not what is being tested, which is why mode
// 2 exists). A hamlet::Error is the expected answer to a bad file; a crash, a sanitizer report or any other exception
// type is a finding.
#include <zlib.h>

#include <cstdint>
#include <cstdio>
#include <string>

#include "h5_program.hpp"
#include "hamlet/core/error.hpp"
#include "hamlet/data/idx.hpp"

using namespace hamlet;

namespace {

std::string g_plain, g_gzip;

void write_all(const std::string& path, const uint8_t* data, std::size_t size) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) std::abort();
  if (size > 0 && std::fwrite(data, 1, size, f) != size) std::abort();
  std::fclose(f);
}

void write_gzip(const std::string& path, const uint8_t* data, std::size_t size) {
  gzFile f = gzopen(path.c_str(), "wb");
  if (!f) std::abort();
  if (size > 0 && gzwrite(f, data, static_cast<unsigned>(size)) != static_cast<int>(size)) std::abort();
  if (gzclose(f) != Z_OK) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  g_plain = fuzz::scratch_file("idx", "-ubyte");
  g_gzip = fuzz::scratch_file("idx", "-ubyte.gz");
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const int mode = data[0] % 3;
  const std::string& path = mode == 0 ? g_plain : g_gzip;
  if (mode == 2) {
    write_gzip(path, data + 1, size - 1);
  } else {
    write_all(path, data + 1, size - 1);
  }
  try {
    const data::IdxArray array = data::read_idx(path);
    // What the reader promises: the payload matches the dimensions exactly.
    int64_t n = 1;
    for (int64_t d : array.dims) n *= d;
    if (array.dims.empty() || array.dims.size() > 4 || n != static_cast<int64_t>(array.values.size())) std::abort();
  } catch (const Error&) {
    if (fuzz::strict()) throw;
  }
  return 0;
}
