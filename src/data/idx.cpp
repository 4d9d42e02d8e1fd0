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
#include "hamlet/core/output_file.hpp"

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

// Sequential reader over a plain or gzip file. The payload is streamed straight into its final buffer: on
// the small VMs hamlet runs on, page faults from an intermediate whole-file buffer doubled the load time of
// Fashion-MNIST. read() returns fewer bytes than asked only at the end of the data; every I/O or gzip
// failure throws.
class ByteReader {
 public:
  explicit ByteReader(const std::string& path) : path_(path), gzip_(is_gzip_name(path)) {
    if (gzip_) {
      gz_ = gzopen(path.c_str(), "rb");
      HAMLET_CHECK(gz_ != nullptr, path, ": cannot open for reading: ", std::strerror(errno));
      gzbuffer(gz_, 1 << 17);
    } else {
      plain_ = std::fopen(path.c_str(), "rb");
      HAMLET_CHECK(plain_ != nullptr, path, ": cannot open for reading: ", std::strerror(errno));
      std::error_code ec;
      const auto size = std::filesystem::file_size(path, ec);
      if (!ec) size_ = static_cast<int64_t>(size);
    }
  }
  ~ByteReader() {
    if (gz_) gzclose(gz_);
    if (plain_) std::fclose(plain_);
  }
  ByteReader(const ByteReader&) = delete;
  ByteReader& operator=(const ByteReader&) = delete;

  // Size of the data in bytes when known without reading it (plain files), else -1.
  int64_t size() const { return size_; }

  std::size_t read(uint8_t* out, std::size_t n) {
    return gzip_ ? read_gzip(out, n) : read_plain(out, n);
  }

  // Reads and discards the rest of the data; returns how many bytes there were.
  int64_t skip_rest() {
    std::vector<uint8_t> sink(kChunk);
    int64_t total = 0;
    for (std::size_t n; (n = read(sink.data(), sink.size())) > 0;) total += static_cast<int64_t>(n);
    return total;
  }

  // gzclose verifies nothing beyond what reading to the end already did, but a failure there still means the
  // data cannot be trusted.
  void close() {
    if (!gz_) return;
    const int status = gzclose(gz_);
    gz_ = nullptr;
    HAMLET_CHECK(status == Z_OK, path_, ": corrupt gzip stream (gzclose returned ", status, ")");
  }

 private:
  std::size_t read_plain(uint8_t* out, std::size_t n) {
    const std::size_t got = std::fread(out, 1, n, plain_);
    HAMLET_CHECK(got == n || !std::ferror(plain_), path_, ": read error: ", std::strerror(errno));
    return got;
  }

  std::size_t read_gzip(uint8_t* out, std::size_t n) {
    std::size_t have = 0;
    while (have < n) {
      const int got = gzread(gz_, out + have, static_cast<unsigned>(std::min(n - have, kChunk)));
      if (got < 0) fail_gzip("corrupt gzip stream");
      // gzread reads non-gzip data transparently; a ".gz" name that is not gzip is a mistake worth reporting.
      HAMLET_CHECK(!gzdirect(gz_), path_, ": not gzip data although the name ends in .gz");
      if (got == 0) {
        // A stream cut short (inside the deflate data or its trailer) surfaces only as a sticky Z_BUF_ERROR
        // once gzread has nothing more to give, not as a failing gzread.
        int errnum = Z_OK;
        gzerror(gz_, &errnum);
        if (errnum != Z_OK) fail_gzip("truncated or corrupt gzip stream");
        break;
      }
      have += static_cast<std::size_t>(got);
    }
    return have;
  }

  [[noreturn]] void fail_gzip(const char* what) {
    int errnum = Z_OK;
    std::string message = gzerror(gz_, &errnum);
    // zlib prefixes its message with the path, which ours already names.
    if (message.rfind(path_ + ": ", 0) == 0) message.erase(0, path_.size() + 2);
    throw Error(detail::concat(path_, ": ", what, " (", message, ")"));
  }

  std::string path_;
  bool gzip_;
  gzFile gz_ = nullptr;
  std::FILE* plain_ = nullptr;
  int64_t size_ = -1;
};

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

std::string truncated_payload(const std::string& path, int64_t payload, std::size_t header, const IdxArray& array,
                              int64_t expected) {
  return detail::concat(path, ": truncated payload: ", payload, " bytes after the ", header,
                        "-byte header but dimensions ", format_dims(array.dims), " need ",
                        expected >= 0 ? std::to_string(expected) : std::string("more than 2^63"));
}

std::string trailing_bytes(const std::string& path, int64_t payload, std::size_t header, const IdxArray& array,
                           int64_t expected) {
  return detail::concat(path, ": trailing bytes: ", payload, " bytes after the ", header,
                        "-byte header but dimensions ", format_dims(array.dims), " need ", expected, " (",
                        payload - expected, " extra)");
}

// Reads the payload into `values`, growing the buffer with the data actually present so that a corrupt
// header announcing terabytes cannot trigger a huge allocation before the stream runs dry.
void read_payload(ByteReader& in, int64_t expected, std::vector<uint8_t>& values) {
  std::size_t have = 0;
  const auto total = static_cast<std::size_t>(expected);
  while (have < total) {
    const std::size_t target = std::min(total, std::max<std::size_t>(2 * have, std::size_t{64} << 20));
    values.resize(target);
    const std::size_t got = in.read(values.data() + have, target - have);
    have += got;
    if (have < target) break;
  }
  values.resize(have);
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
  ByteReader in(path);

  uint8_t head[4 + 4 * kMaxRank];
  const std::size_t got = in.read(head, 4);
  HAMLET_CHECK(got == 4, path, ": truncated IDX header (", got, " bytes, need at least 4)");
  const uint32_t magic = read_be32(head);
  HAMLET_CHECK(head[0] == 0 && head[1] == 0, path, ": bad IDX magic ", hex32(magic),
               " (expected 0x00000803 for uint8 images or 0x00000801 for labels)");
  HAMLET_CHECK(head[2] == kTypeUint8, path, ": unsupported IDX type code ", hex8(head[2]), " in magic ",
               hex32(magic), " (only 0x08 = unsigned byte is supported)");
  const int rank = head[3];
  HAMLET_CHECK(rank >= 1 && rank <= kMaxRank, path, ": IDX rank ", rank, " in magic ", hex32(magic),
               " is out of range 1..", kMaxRank);
  const std::size_t header = 4 + 4 * static_cast<std::size_t>(rank);
  const std::size_t got_dims = in.read(head + 4, header - 4);
  HAMLET_CHECK(got_dims == header - 4, path, ": truncated IDX header (", 4 + got_dims, " bytes, rank ", rank,
               " needs ", header, ")");

  IdxArray array;
  for (int i = 0; i < rank; ++i) array.dims.push_back(read_be32(head + 4 + 4 * i));
  check_dims(path, array.dims);
  const int64_t expected = checked_product(array.dims);

  // Plain files announce their size, so a length mismatch is caught before anything is allocated.
  if (in.size() >= 0) {
    const int64_t payload = in.size() - static_cast<int64_t>(header);
    if (expected < 0 || payload < expected) throw Error(truncated_payload(path, payload, header, array, expected));
    if (payload > expected) throw Error(trailing_bytes(path, payload, header, array, expected));
  }
  if (expected < 0) throw Error(truncated_payload(path, in.skip_rest(), header, array, expected));
  read_payload(in, expected, array.values);
  const auto have = static_cast<int64_t>(array.values.size());
  if (have < expected) throw Error(truncated_payload(path, have, header, array, expected));
  const int64_t extra = in.skip_rest();
  if (extra > 0) throw Error(trailing_bytes(path, expected + extra, header, array, expected));
  in.close();
  return array;
}

void write_idx(const std::string& path, const IdxArray& array) {
  check_dims("cannot write " + path, array.dims);
  const int64_t expected = checked_product(array.dims);
  HAMLET_CHECK(expected >= 0 && static_cast<int64_t>(array.values.size()) == expected, "cannot write ", path, ": ",
               array.values.size(), " values do not match dimensions ", format_dims(array.dims));

  std::vector<uint8_t> header = {0, 0, kTypeUint8, static_cast<uint8_t>(array.dims.size())};
  for (int64_t d : array.dims) append_be32(header, static_cast<uint32_t>(d));

  // Written next to the target and renamed, so a reader never sees a half-written file (core/output_file.hpp).
  write_file_atomically(path, [&](const std::string& tmp) {
    if (is_gzip_name(path)) {
      write_gzip(tmp, header, array.values);
    } else {
      write_plain(tmp, header, array.values);
    }
  });
}

}  // namespace hamlet::data
