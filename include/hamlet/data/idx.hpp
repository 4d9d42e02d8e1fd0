#pragma once
// Reader and writer for the IDX format of MNIST / Fashion-MNIST (LeCun et al.), plain or gzip-compressed.
//
// Layout (big-endian): magic = 0x0000 | type code | rank (0x08 = unsigned byte), then one uint32 size per
// dimension, then the raw payload. hamlet reads uint8 images of rank 3 (magic 2051) and uint8 labels of rank 1
// (magic 2049). Files ending in ".gz" are decompressed with zlib (and must be gzip data). Every check failure
// throws hamlet::Error naming the file and what was wrong (bad magic, wrong rank, payload length not matching
// the sizes, truncated gzip stream, ...).
#include <cstdint>
#include <string>
#include <vector>

namespace hamlet::data {

struct IdxArray {
  std::vector<int64_t> dims;    // e.g. {N, 28, 28} or {N}
  std::vector<uint8_t> values;  // row-major payload, size = product(dims)
};

// Reads a uint8 IDX file (any rank 1..4), gzip if the name ends in ".gz". Validates the magic number, rank,
// and that the payload length equals the product of the dimensions exactly.
IdxArray read_idx(const std::string& path);
// Writes a uint8 IDX file (gzip if the name ends in ".gz") atomically: temporary file, then rename.
void write_idx(const std::string& path, const IdxArray& array);

}  // namespace hamlet::data
