#include "hamlet/data/digits.hpp"

#include <zlib.h>

#include <cstdlib>
#include <memory>
#include <vector>

#include "hamlet/core/error.hpp"

namespace hamlet::data {
namespace {

constexpr int64_t kPixels = 64;
constexpr int64_t kMaxPixel = 16;
constexpr int64_t kClasses = 10;

// One row's 65 integers; false (with `what`) when the line is not that.
bool parse_row(const std::string& line, std::vector<int64_t>& values, std::string& what) {
  values.clear();
  const char* p = line.c_str();
  while (*p != '\0' && *p != '\n' && *p != '\r') {
    char* end = nullptr;
    const long v = std::strtol(p, &end, 10);
    if (end == p) {
      what = "a value that is not an integer";
      return false;
    }
    values.push_back(v);
    p = end;
    if (*p == ',') ++p;
    else if (*p != '\0' && *p != '\n' && *p != '\r') {
      what = "an unexpected character";
      return false;
    }
  }
  if (static_cast<int64_t>(values.size()) != kPixels + 1) {
    what = std::to_string(values.size()) + " values (expected 65: 64 pixels and the label)";
    return false;
  }
  for (int64_t i = 0; i < kPixels; ++i) {
    if (values[i] < 0 || values[i] > kMaxPixel) {
      what = "pixel " + std::to_string(i) + " = " + std::to_string(values[i]) + " outside 0..16";
      return false;
    }
  }
  if (values[kPixels] < 0 || values[kPixels] >= kClasses) {
    what = "label " + std::to_string(values[kPixels]) + " outside 0..9";
    return false;
  }
  return true;
}

}  // namespace

Dataset load_digits_csv(const std::string& path) {
  // gzopen reads plain files transparently, so one path serves digits.csv and digits.csv.gz.
  const std::unique_ptr<gzFile_s, int (*)(gzFile)> file(gzopen(path.c_str(), "rb"), gzclose);
  HAMLET_CHECK(file != nullptr, path, ": cannot open (run scripts/fetch_data.sh, which extracts the 8x8 digits from ",
               "Debian's python3-sklearn package)");
  std::vector<float> pixels;
  std::vector<int64_t> labels, row;
  std::string line, what;
  char buf[4096];
  int64_t number = 0;
  while (gzgets(file.get(), buf, sizeof(buf)) != nullptr) {
    line = buf;
    ++number;
    if (line.find_first_not_of(" \t\r\n") == std::string::npos) continue;
    HAMLET_CHECK(parse_row(line, row, what), path, ", line ", number, ": ", what);
    for (int64_t i = 0; i < kPixels; ++i) pixels.push_back(static_cast<float>(row[i]) / kMaxPixel);
    labels.push_back(row[kPixels]);
  }
  int error = Z_OK;
  gzerror(file.get(), &error);
  HAMLET_CHECK(error == Z_OK || error == Z_STREAM_END, path, ": damaged gzip data after line ", number);
  HAMLET_CHECK(!labels.empty(), path, ": holds no rows");
  const auto n = static_cast<int64_t>(labels.size());
  Dataset d;
  d.images = at::from_blob(pixels.data(), {n, kPixels}, at::kFloat).clone();
  d.labels = at::from_blob(labels.data(), {n}, at::kLong).clone();
  d.name = "digits";
  d.source = path;
  return d;
}

}  // namespace hamlet::data
