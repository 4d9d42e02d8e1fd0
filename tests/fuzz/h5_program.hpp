#pragma once
// Structure-aware input for the fuzz targets of hamlet's HDF5 readers (fuzz_weights, fuzz_runs, fuzz_checkpoint).
//
// Why structure-aware: feeding raw bytes to an HDF5 reader mostly fuzzes libhdf5's own parser of the file format (its
// superblock, B-trees, object headers), not hamlet's code, and Debian's libhdf5 has known crashes on malformed files
// that hamlet cannot fix. What hamlet owns is what it does with a *well-formed* HDF5 file whose content is wrong:
// missing or extra groups, datasets of the wrong shape or type, NaN or 1e300 where a count belongs, strings where
// numbers belong, option texts that do not parse, names that are not the expected ones. So the fuzz bytes are decoded
// into a small program of groups, datasets and attributes, written with hamlet::io::H5Writer into a valid HDF5 temp
// file, and the reader is run on that. Names, paths and string values are drawn from dictionaries of what the readers
// look for (or spelled out literally), so mutations move between "almost right" files.
//
// Format (bytes are read front to back; reading past the end gives 0):
//   program := op*                                     (at most kMaxOps)
//   op      := kind:u8 ...                             kind % 6 selects:
//     0 numeric dataset   path dtype:u8 rank:u8 dim:u8{1 + rank % 3} values
//     1 string dataset    path count:u8 text{count % 5}
//     2 string attribute  path attr-name text
//     3 integer attribute path attr-name int
//     4 double attribute  path attr-name double
//     5 extendible        path columns:u8 rows:u8 values        (float64 [rows, columns], appended row by row)
//   path    := s:u8       s < 0xC0: kPaths[s % n]; s < 0xE0: kPaths[u8 % n] + "/" + kNames[u8 % n]; else literal
//   attr-name, text := s:u8   s < 0xE0: dictionary[s % n]; else literal
//   literal := len:u16le bytes{len}                    (len capped at 4096)
//   values  := mode:u8    mode % 4 = 0: every element one number; 1: each element its own number;
//                         2: 0, 1, 2, ...; 3: seed:u8, uniform in [-1, 1) (integers in [-3, 3]) from that seed
//   int, double := s:u8   s < 0xF0: palette[s % n] (the integer palette or the double palette); else 8 raw bytes
// dtype % 2 == 0 is float64, else int64. A dataset of more than kMaxElements values is skipped; an op the writer
// rejects (hamlet::Error: a group where a dataset is, a name HDF5 refuses) is skipped.
//
// Encoder writes the same format; the targets use it to write their seed corpus (HAMLET_FUZZ_WRITE_SEEDS=DIR, see
// docs/testing.md), so the seeds always decode to the files they were made from.
#include <ATen/ATen.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <string>
#include <unistd.h>
#include <vector>

#include "hamlet/core/error.hpp"
#include "hamlet/io/h5.hpp"

namespace hamlet::fuzz {

constexpr std::size_t kMaxOps = 64;
constexpr int64_t kMaxElements = int64_t{1} << 16;
constexpr std::size_t kMaxLiteral = 4096;

// Group and dataset paths the readers open.
inline std::vector<std::string>& paths() {
  static std::vector<std::string> v = {
      "/", "/weights", "/best_weights", "/meta_state", "/meta_state/slots", "/meta_state/scalars", "/curve",
      "/methods", "/method_names", "/methods/adam", "/methods/adam/loss", "/methods/adam/tune", "/methods/phnn",
      "/methods/phnn/loss", "/methods/phnn/tune", "/weights/0", "/weights/1", "/best_weights/0", "/best_weights/1",
      "/meta_state/slots/m", "/meta_state/slots/m/0", "/meta_state/slots/v", "/meta_state/slots/v/0",
      "/meta_state/scalars/t", "/methods/lstm", "/methods/lstm/loss"};
  return v;
}
// Path components (composed with a path above); the targets add the learned optimizers' weight names.
inline std::vector<std::string>& names() {
  static std::vector<std::string> v = {"0", "1", "2", "loss", "tune", "adam", "phnn", "lstm", "sgd", "m", "v", "t",
                                       "weights", "methods", ""};
  return v;
}
// Attribute names the readers look for.
inline std::vector<std::string>& attribute_names() {
  static std::vector<std::string> v = {
      "optimizer", "architecture", "options", "num_params", "task", "task_options", "split", "seed", "problems",
      "steps", "count", "step", "epoch", "best_score", "best_epoch", "initial_score", "meta_steps", "skipped_steps",
      "cut_trajectories", "config", "meta_train", "kind", "hamlet_version", "content_checksum"};
  return v;
}
// String values; the targets add each learned optimizer's architecture and recorded options.
inline std::vector<std::string>& texts() {
  static std::vector<std::string> v = {
      "", "phnn-paper", "phnn", "lstm", "mlp-lopt", "phnn-features", "adam", "sgd", "quadratic", "mlp", "hnn",
      "train", "validation", "test", "{}", "{\"lr\":\"0.1\"}", "{\"out_mul\":\"0.1\"}", "lr=0.1", "out_mul=0.1",
      "out_mul=0.1, weights=/nonexistent/w.h5", "{\"dim\":\"3\"}", "dim=3", "hidden=16", "hidden=0", "hidden=-1",
      "hidden=9223372036854775807", "{\"hidden\":1e300}", "{\"hidden\":[1]}", "{", "=", "a=b=c", "lr=nan",
      "epochs=2, trajectories=3, estimator=pes", "evaluate", "meta-train", "x=1, x=2", "{\"a\":null}"};
  return v;
}
inline const std::vector<double>& double_palette() {
  static const std::vector<double> v = {0.0, 1.0, -1.0, 0.5, 2.0, 3.0, 7.0, 8.0, 100.0, 1e-300, 1e300, -1e300,
                                        std::numeric_limits<double>::quiet_NaN(),
                                        std::numeric_limits<double>::infinity(),
                                        -std::numeric_limits<double>::infinity(), 9.3e18, -9.3e18, 4.9e-324, 1e9};
  return v;
}
inline const std::vector<int64_t>& int_palette() {
  static const std::vector<int64_t> v = {0, 1, -1, 2, 3, 4, 5, 7, 8, 16, 100, 1000000000,
                                         std::numeric_limits<int64_t>::max(), std::numeric_limits<int64_t>::min(),
                                         int64_t{1} << 31, -(int64_t{1} << 31), int64_t{1} << 32, int64_t{1} << 62};
  return v;
}

inline void add_unique(std::vector<std::string>& dict, const std::string& s) {
  for (const auto& d : dict) {
    if (d == s) return;
  }
  dict.push_back(s);
}

class Cursor {
 public:
  Cursor(const uint8_t* data, std::size_t size) : data_(data), size_(size) {}
  bool empty() const { return pos_ >= size_; }
  uint8_t u8() { return pos_ < size_ ? data_[pos_++] : 0; }
  uint16_t u16() { return static_cast<uint16_t>(u8() | (u8() << 8)); }
  std::string bytes(std::size_t n) {
    n = std::min(n, size_ - std::min(pos_, size_));
    std::string out(reinterpret_cast<const char*>(data_ + pos_), n);
    pos_ += n;
    return out;
  }
  std::string literal() { return bytes(std::min<std::size_t>(u16(), kMaxLiteral)); }
  std::string from(const std::vector<std::string>& dict) {
    const uint8_t s = u8();
    return s < 0xE0 ? dict[s % dict.size()] : literal();
  }
  std::string path() {
    const uint8_t s = u8();
    if (s < 0xC0) return paths()[s % paths().size()];
    if (s < 0xE0) {
      const std::string parent = paths()[u8() % paths().size()];
      return (parent == "/" ? "" : parent) + "/" + names()[u8() % names().size()];
    }
    return literal();
  }
  double f64() { return number(double_palette()); }
  int64_t i64() { return number(int_palette()); }

 private:
  // s:u8 < 0xF0: palette[s % n]; else the next 8 raw bytes as a T.
  template <typename T>
  T number(const std::vector<T>& palette) {
    const uint8_t s = u8();
    if (s < 0xF0) return palette[s % palette.size()];
    T v = 0;
    const std::string raw = bytes(8);
    std::memcpy(&v, raw.data(), raw.size());
    return v;
  }

  const uint8_t* data_;
  std::size_t size_;
  std::size_t pos_ = 0;
};

// The `n` elements of a values block of mode `mode`, numbers read with `number` (Cursor::i64 or Cursor::f64), the
// seeded ones drawn from `dist`.
template <typename T, typename Distribution>
std::vector<T> decode_elements(Cursor& in, uint8_t mode, int64_t n, T (Cursor::*number)(), Distribution dist) {
  std::vector<T> v(static_cast<std::size_t>(n));
  if (mode == 0) {
    const T x = (in.*number)();
    std::fill(v.begin(), v.end(), x);
  } else if (mode == 1) {
    for (auto& x : v) x = (in.*number)();
  } else if (mode == 2) {
    for (int64_t i = 0; i < n; ++i) v[static_cast<std::size_t>(i)] = static_cast<T>(i);
  } else {
    std::mt19937 gen(in.u8());
    for (auto& x : v) x = dist(gen);
  }
  return v;
}

// Decodes a values block for `n` elements.
inline at::Tensor decode_values(Cursor& in, int64_t n, bool integer) {
  const uint8_t mode = in.u8() % 4;
  if (integer) {
    return at::tensor(decode_elements(in, mode, n, &Cursor::i64, std::uniform_int_distribution<int64_t>(-3, 3)),
                      at::kLong);
  }
  return at::tensor(decode_elements(in, mode, n, &Cursor::f64, std::uniform_real_distribution<double>(-1.0, 1.0)),
                    at::kDouble);
}

// Runs one op against the writer; hamlet::Error from the writer (an op HDF5 or H5Writer refuses) skips the op.
inline void run_op(Cursor& in, io::H5Writer& w) {
  const uint8_t kind = in.u8() % 6;
  const std::string path = in.path();
  try {
    switch (kind) {
      case 0: {
        const bool integer = in.u8() % 2 == 1;
        const int rank = 1 + in.u8() % 3;
        std::vector<int64_t> dims;
        int64_t n = 1;
        for (int i = 0; i < rank; ++i) {
          dims.push_back(in.u8());
          n *= dims.back();
        }
        if (n > kMaxElements) return;
        w.write(path, decode_values(in, n, integer).reshape(dims));
        break;
      }
      case 1: {
        std::vector<std::string> values(in.u8() % 5);
        for (auto& s : values) s = in.from(texts());
        w.write_strings(path, values);
        break;
      }
      case 2: {
        const std::string name = in.from(attribute_names());
        w.set_attribute(path, name, in.from(texts()));
        break;
      }
      case 3: {
        const std::string name = in.from(attribute_names());
        w.set_attribute(path, name, in.i64());
        break;
      }
      case 4: {
        const std::string name = in.from(attribute_names());
        w.set_attribute(path, name, in.f64());
        break;
      }
      case 5: {
        const int64_t columns = in.u8();
        const int64_t rows = in.u8() % 8;
        if (rows * columns > kMaxElements) return;
        const at::Tensor values = decode_values(in, rows * columns, false);
        w.create_extendible(path, columns);
        for (int64_t r = 0; r < rows; ++r) {
          const at::Tensor row = values.narrow(0, r * columns, columns).contiguous();
          w.append_row(path, std::vector<double>(row.data_ptr<double>(), row.data_ptr<double>() + columns));
        }
        break;
      }
    }
  } catch (const Error&) {
  }
}

// A scratch directory for the decoded files: /dev/shm when writable (no disk I/O per input), else $TMPDIR or /tmp.
inline std::string scratch_dir() {
  if (::access("/dev/shm", W_OK) == 0) return "/dev/shm";
  const char* tmp = std::getenv("TMPDIR");
  return tmp && *tmp ? tmp : "/tmp";
}

// "<scratch>/hamlet-fuzz-<tag>-<pid><suffix>": one file per process, reused by every input and removed at exit.
inline std::string scratch_file(const std::string& tag, const std::string& suffix) {
  static std::vector<std::string> files;
  if (files.empty()) {
    std::atexit([] {
      for (const auto& f : files) std::remove(f.c_str());
    });
  }
  files.push_back(scratch_dir() + "/hamlet-fuzz-" + tag + "-" + std::to_string(::getpid()) + suffix);
  return files.back();
}

// HAMLET_FUZZ_STRICT=1 (the fuzz.<target>.seeds ctest entries): the committed seeds must load without any error, so
// a seed that no longer decodes to a valid file (the schema moved on) fails the test instead of fuzzing less.
inline bool strict() {
  static const bool on = [] {
    const char* v = std::getenv("HAMLET_FUZZ_STRICT");
    return v && *v && std::string(v) != "0";
  }();
  return on;
}

// Decodes the program and writes it to `path` (committed; the previous file is replaced).
inline void write_program(Cursor& in, const std::string& path) {
  io::H5Writer w(path);
  for (std::size_t i = 0; i < kMaxOps && !in.empty(); ++i) run_op(in, w);
  w.commit();
}

// Writes programs in the format above.
class Encoder {
 public:
  const std::string& bytes() const { return out_; }
  void u8(uint8_t v) { out_.push_back(static_cast<char>(v)); }
  void u16(uint16_t v) {
    u8(static_cast<uint8_t>(v & 0xFF));
    u8(static_cast<uint8_t>(v >> 8));
  }
  void literal(const std::string& s) {
    HAMLET_CHECK(s.size() <= kMaxLiteral, "fuzz seed: literal of ", s.size(), " bytes");
    u16(static_cast<uint16_t>(s.size()));
    out_ += s;
  }
  // Index into `dict` when the string is among its first 0xE0 entries, else a literal.
  void from(const std::vector<std::string>& dict, const std::string& s) {
    for (std::size_t i = 0; i < dict.size() && i < 0xE0; ++i) {
      if (dict[i] == s) return u8(static_cast<uint8_t>(i));
    }
    u8(0xFF);
    literal(s);
  }
  void path(const std::string& p) {
    for (std::size_t i = 0; i < paths().size() && i < 0xC0; ++i) {
      if (paths()[i] == p) return u8(static_cast<uint8_t>(i));
    }
    u8(0xFF);
    literal(p);
  }
  void i64(int64_t v) { number(int_palette(), v); }
  void f64(double v) { number(double_palette(), v); }

  // A dataset with the tensor's dtype class and shape; values exactly (`exact`) or random from a seed.
  void dataset(const std::string& p, const at::Tensor& t, bool exact) {
    u8(0);
    path(p);
    const bool integer = at::isIntegralType(t.scalar_type(), /*includeBool=*/true);
    u8(integer ? 1 : 0);
    const auto sizes = t.sizes();
    HAMLET_CHECK(!sizes.empty() && sizes.size() <= 3, "fuzz seed: rank ", sizes.size(), " of ", p);
    u8(static_cast<uint8_t>(sizes.size() - 1));
    for (int64_t s : sizes) {
      HAMLET_CHECK(s <= 255, "fuzz seed: dimension ", s, " of ", p, " does not fit a byte");
      u8(static_cast<uint8_t>(s));
    }
    if (!exact) {
      u8(3);
      u8(static_cast<uint8_t>(out_.size()));
      return;
    }
    u8(1);
    const at::Tensor flat = t.reshape({-1}).contiguous();
    for (int64_t i = 0; i < flat.numel(); ++i) {
      if (integer) {
        i64(flat[i].item<int64_t>());
      } else {
        f64(flat[i].item<double>());
      }
    }
  }
  void strings(const std::string& p, const std::vector<std::string>& values) {
    HAMLET_CHECK(values.size() < 5, "fuzz seed: ", values.size(), " strings in ", p);
    u8(1);
    path(p);
    u8(static_cast<uint8_t>(values.size()));
    for (const auto& s : values) from(texts(), s);
  }
  void attribute(const std::string& p, const std::string& name, const std::string& value) {
    u8(2);
    path(p);
    from(attribute_names(), name);
    from(texts(), value);
  }
  void attribute(const std::string& p, const std::string& name, int64_t value) {
    u8(3);
    path(p);
    from(attribute_names(), name);
    i64(value);
  }
  void attribute(const std::string& p, const std::string& name, double value) {
    u8(4);
    path(p);
    from(attribute_names(), name);
    f64(value);
  }

 private:
  // The palette index of v when v is among its entries (compared bitwise, so that NaN and -0.0 find their own),
  // else 0xFF and v's 8 raw bytes.
  template <typename T>
  void number(const std::vector<T>& palette, T v) {
    for (std::size_t i = 0; i < palette.size(); ++i) {
      if (std::memcmp(&palette[i], &v, sizeof v) == 0) return u8(static_cast<uint8_t>(i));
    }
    u8(0xFF);
    char raw[8];
    std::memcpy(raw, &v, 8);
    out_.append(raw, 8);
  }

  std::string out_;
};

// HAMLET_FUZZ_WRITE_SEEDS=DIR: the target writes its seed inputs to DIR and exits (called from LLVMFuzzerInitialize).
// `check` decodes each seed, writes the file and runs the reader on it; a seed the reader rejects is a bug in the
// seed, reported and exit 1.
template <typename Check>
void maybe_write_seeds(const std::vector<std::pair<std::string, std::string>>& seeds, Check check) {
  const char* dir = std::getenv("HAMLET_FUZZ_WRITE_SEEDS");
  if (!dir || !*dir) return;
  std::filesystem::create_directories(dir);
  int failures = 0;
  for (const auto& [name, bytes] : seeds) {
    try {
      check(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
    } catch (const std::exception& e) {
      std::fprintf(stderr, "seed %s does not load: %s\n", name.c_str(), e.what());
      ++failures;
      continue;
    }
    std::ofstream(std::filesystem::path(dir) / name, std::ios::binary) << bytes;
    std::fprintf(stderr, "wrote seed %s (%zu bytes)\n", name.c_str(), bytes.size());
  }
  std::exit(failures ? 1 : 0);
}

}  // namespace hamlet::fuzz
