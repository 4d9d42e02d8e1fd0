#include "hamlet/data/idx.hpp"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <unistd.h>

#include "hamlet/core/error.hpp"

namespace hamlet::data {
namespace {

constexpr uint8_t kTypeUint8 = 0x08;
constexpr int kMaxRank = 4;
// gzread/gzwrite take an unsigned length; a bounded chunk keeps each call well inside that range.
constexpr std::size_t kChunk = std::size_t{1} << 20;

bool is_gzip_name(const std::string& path) {
  return path.size() >= 3 && path.compare(path.size() - 3, 3, ".gz") == 0;
}

std::string hex32(uint32_t value) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "0x%08X", static_cast<unsigned>(value));
  return buf;
}

std::string hex8(uint8_t value) {
  char buf[8];
  std::snprintf(buf, sizeof(buf), "0x%02X", static_cast<unsigned>(value));
  return buf;
}

std::string format_dims(const std::vector<int64_t>& dims) {
  std::string out;
  for (std::size_t i = 0; i < dims.size(); ++i) out += (i ? "x" : "") + std::to_string(dims[i]);
  return out;
}

uint32_t read_be32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

void append_be32(std::vector<uint8_t>& out, uint32_t value) {
  out.push_back(static_cast<uint8_t>(value >> 24));
  out.push_back(static_cast<uint8_t>(value >> 16));
  out.push_back(static_cast<uint8_t>(value >> 8));
  out.push_back(static_cast<uint8_t>(value));
}

// Checking existence up front gives "no such file" instead of a generic open failure, which is the case users
// actually hit (data not fetched yet).
void check_readable_file(const std::string& path) {
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  HAMLET_CHECK(std::filesystem::exists(status), path, ": no such file");
  HAMLET_CHECK(!std::filesystem::is_directory(status), path, ": is a directory, expected an IDX file");
}

std::vector<uint8_t> read_plain(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  HAMLET_CHECK(in, path, ": cannot open for reading: ", std::strerror(errno));
  in.seekg(0, std::ios::end);
  const std::streamoff size = in.tellg();
  HAMLET_CHECK(size >= 0, path, ": cannot determine file size");
  in.seekg(0, std::ios::beg);
  std::vector<uint8_t> bytes(static_cast<std::size_t>(size));
  if (size > 0) in.read(reinterpret_cast<char*>(bytes.data()), size);
  HAMLET_CHECK(in && in.gcount() == size, path, ": read error after ", in.gcount(), " of ", size, " bytes");
  return bytes;
}

std::vector<uint8_t> read_gzip(const std::string& path) {
  gzFile file = gzopen(path.c_str(), "rb");
  HAMLET_CHECK(file != nullptr, path, ": cannot open for reading: ", std::strerror(errno));
  gzbuffer(file, 1 << 17);
  std::vector<uint8_t> bytes;
  std::size_t have = 0;
  for (;;) {
    bytes.resize(have + kChunk);
    const int n = gzread(file, bytes.data() + have, static_cast<unsigned>(kChunk));
    if (n < 0) {
      int errnum = 0;
      const std::string message = gzerror(file, &errnum);
      gzclose(file);
      throw Error(detail::concat(path, ": corrupt gzip stream (", message, ")"));
    }
    if (n == 0) break;
    have += static_cast<std::size_t>(n);
  }
  bytes.resize(have);
  // zlib reports a stream cut short (missing deflate data or trailer) only as a sticky Z_BUF_ERROR after the
  // last successful read, not as a failing gzread, so both gzerror and gzclose must be consulted.
  int errnum = Z_OK;
  const std::string message = gzerror(file, &errnum);
  const int close_status = gzclose(file);
  HAMLET_CHECK(errnum == Z_OK && close_status == Z_OK, path, ": truncated or corrupt gzip stream (",
               errnum != Z_OK ? message : std::string("gzclose failed"), ")");
  return bytes;
}

// `context` starts every message: the path when reading, "cannot write <path>" when writing.
void check_dims(const std::string& context, const std::vector<int64_t>& dims) {
  HAMLET_CHECK(!dims.empty() && dims.size() <= static_cast<std::size_t>(kMaxRank), context, ": IDX rank ",
               dims.size(), " is out of range 1..", kMaxRank);
  for (std::size_t i = 0; i < dims.size(); ++i) {
    HAMLET_CHECK(dims[i] > 0 && dims[i] <= int64_t{std::numeric_limits<uint32_t>::max()}, context, ": IDX dimension ",
                 i, " is ", dims[i], " (must be in 1..", std::numeric_limits<uint32_t>::max(), ")");
  }
}

// Product of the dimensions, or -1 when it would not fit in int64 (such a file can never be complete).
int64_t checked_product(const std::vector<int64_t>& dims) {
  int64_t product = 1;
  for (int64_t d : dims) {
    if (product > std::numeric_limits<int64_t>::max() / d) return -1;
    product *= d;
  }
  return product;
}

IdxArray parse_idx(const std::string& path, const std::vector<uint8_t>& bytes) {
  HAMLET_CHECK(bytes.size() >= 4, path, ": truncated IDX header (file has ", bytes.size(), " bytes, need at least 4)");
  const uint32_t magic = read_be32(bytes.data());
  HAMLET_CHECK(bytes[0] == 0 && bytes[1] == 0, path, ": bad IDX magic ", hex32(magic),
               " (expected 0x00000803 for uint8 images or 0x00000801 for labels)");
  HAMLET_CHECK(bytes[2] == kTypeUint8, path, ": unsupported IDX type code ", hex8(bytes[2]),
               " in magic ", hex32(magic), " (only 0x08 = unsigned byte is supported)");
  const int rank = bytes[3];
  HAMLET_CHECK(rank >= 1 && rank <= kMaxRank, path, ": IDX rank ", rank, " in magic ", hex32(magic),
               " is out of range 1..", kMaxRank);
  const std::size_t header = 4 + 4 * static_cast<std::size_t>(rank);
  HAMLET_CHECK(bytes.size() >= header, path, ": truncated IDX header (file has ", bytes.size(), " bytes, rank ",
               rank, " needs ", header, ")");

  IdxArray array;
  for (int i = 0; i < rank; ++i) array.dims.push_back(read_be32(bytes.data() + 4 + 4 * i));
  check_dims(path, array.dims);

  const auto payload = static_cast<int64_t>(bytes.size() - header);
  const int64_t expected = checked_product(array.dims);
  HAMLET_CHECK(expected >= 0 && payload >= expected, path, ": truncated payload: ", payload, " bytes after the ",
               header, "-byte header but dimensions ", format_dims(array.dims), " need ",
               expected >= 0 ? std::to_string(expected) : std::string("more than 2^63"));
  HAMLET_CHECK(payload == expected, path, ": trailing bytes: ", payload, " bytes after the ", header,
               "-byte header but dimensions ", format_dims(array.dims), " need ", expected, " (",
               payload - expected, " extra)");
  array.values.assign(bytes.begin() + static_cast<std::ptrdiff_t>(header), bytes.end());
  return array;
}

void write_plain(const std::string& path, const std::vector<uint8_t>& header, const std::vector<uint8_t>& values) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  HAMLET_CHECK(out, "cannot write ", path, ": ", std::strerror(errno));
  out.write(reinterpret_cast<const char*>(header.data()), static_cast<std::streamsize>(header.size()));
  out.write(reinterpret_cast<const char*>(values.data()), static_cast<std::streamsize>(values.size()));
  out.close();
  HAMLET_CHECK(!out.fail(), "cannot write ", path, ": write failed (disk full?)");
}

void gz_write_all(gzFile file, const std::string& path, const uint8_t* data, std::size_t size) {
  while (size > 0) {
    const std::size_t n = std::min(size, kChunk);
    if (gzwrite(file, data, static_cast<unsigned>(n)) != static_cast<int>(n)) {
      int errnum = 0;
      const std::string message = gzerror(file, &errnum);
      gzclose(file);
      throw Error(detail::concat("cannot write ", path, ": ", message));
    }
    data += n;
    size -= n;
  }
}

void write_gzip(const std::string& path, const std::vector<uint8_t>& header, const std::vector<uint8_t>& values) {
  gzFile file = gzopen(path.c_str(), "wb");
  HAMLET_CHECK(file != nullptr, "cannot write ", path, ": ", std::strerror(errno));
  gz_write_all(file, path, header.data(), header.size());
  gz_write_all(file, path, values.data(), values.size());
  // The final deflate block and trailer are flushed by gzclose, so a full disk may only show up here.
  HAMLET_CHECK(gzclose(file) == Z_OK, "cannot write ", path, ": gzclose failed (disk full?)");
}

}  // namespace

IdxArray read_idx(const std::string& path) {
  check_readable_file(path);
  // gzopen would also read plain files transparently, but naming decides the format so that a ".gz" file that is
  // not gzip data is not silently accepted as raw bytes by a different code path than the plain reader.
  const std::vector<uint8_t> bytes = is_gzip_name(path) ? read_gzip(path) : read_plain(path);
  return parse_idx(path, bytes);
}

void write_idx(const std::string& path, const IdxArray& array) {
  check_dims("cannot write " + path, array.dims);
  const int64_t expected = checked_product(array.dims);
  HAMLET_CHECK(expected >= 0 && static_cast<int64_t>(array.values.size()) == expected, "cannot write ", path, ": ",
               array.values.size(), " values do not match dimensions ", format_dims(array.dims));

  std::vector<uint8_t> header = {0, 0, kTypeUint8, static_cast<uint8_t>(array.dims.size())};
  for (int64_t d : array.dims) append_be32(header, static_cast<uint32_t>(d));

  // Writing next to the target and renaming means a reader never sees a half-written file, even if the
  // process dies mid-way; the pid keeps concurrent writers from clobbering each other's temporary.
  const std::string tmp = path + ".tmp-" + std::to_string(::getpid());
  try {
    if (is_gzip_name(path)) {
      write_gzip(tmp, header, array.values);
    } else {
      write_plain(tmp, header, array.values);
    }
    std::error_code ec;
    std::filesystem::rename(tmp, path, ec);
    HAMLET_CHECK(!ec, "cannot write ", path, ": rename from ", tmp, " failed: ", ec.message());
  } catch (...) {
    std::error_code ignored;
    std::filesystem::remove(tmp, ignored);
    throw;
  }
}

}  // namespace hamlet::data
