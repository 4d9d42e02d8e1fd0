#include "hamlet/data/breast_cancer.hpp"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "hamlet/core/error.hpp"
#include "hamlet/data/dataset.hpp"

namespace hamlet::data {
namespace {

namespace fs = std::filesystem;

// Splits a CSV line at commas (the files hold no quoted fields); a trailing '\r' is dropped so that a file with
// Windows line ends reads the same.
std::vector<std::string> split_csv(std::string line) {
  if (!line.empty() && line.back() == '\r') line.pop_back();
  std::vector<std::string> out;
  std::stringstream in(line);
  std::string field;
  while (std::getline(in, field, ',')) out.push_back(field);
  if (!line.empty() && line.back() == ',') out.emplace_back();
  return out;
}

// strtod / strtoll accept leading blanks and stop at junk; a field counts only when all of it was consumed, so
// "1.5x" or "" is refused instead of silently read as 1.5 or 0.
bool parse_double(const std::string& text, double& value) {
  if (text.empty()) return false;
  char* end = nullptr;
  errno = 0;
  value = std::strtod(text.c_str(), &end);
  return end == text.c_str() + text.size() && errno == 0 && std::isfinite(value);
}

bool parse_int(const std::string& text, int64_t& value) {
  if (text.empty()) return false;
  char* end = nullptr;
  errno = 0;
  value = std::strtoll(text.c_str(), &end, 10);
  return end == text.c_str() + text.size() && errno == 0;
}

}  // namespace

TabularDataset load_sklearn_table_csv(const std::string& path, const std::string& name) {
  std::ifstream in(path);
  HAMLET_CHECK(in.good(), path, ": cannot open (run scripts/fetch_data.sh, which extracts it from Debian's ",
               "python3-sklearn package)");
  std::string line;
  HAMLET_CHECK(static_cast<bool>(std::getline(in, line)), path, ": empty file (expected a header line)");
  const std::vector<std::string> header = split_csv(line);
  int64_t rows = 0, columns = 0;
  HAMLET_CHECK(header.size() >= 4 && parse_int(header[0], rows) && parse_int(header[1], columns) && rows > 0 &&
                   columns > 0,
               path, ", line 1: expected a header 'rows,features,class0,class1,...', got '", line, "'");
  TabularDataset d;
  d.class_names.assign(header.begin() + 2, header.end());
  const auto classes = static_cast<int64_t>(d.class_names.size());

  std::vector<double> values;
  std::vector<int64_t> labels;
  values.reserve(static_cast<std::size_t>(rows * columns));
  int64_t number = 1;
  while (std::getline(in, line)) {
    ++number;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::vector<std::string> fields = split_csv(line);
    HAMLET_CHECK(static_cast<int64_t>(fields.size()) == columns + 1, path, ", line ", number, ": ", fields.size(),
                 " values (expected ", columns + 1, ": ", columns, " features and the label)");
    for (int64_t j = 0; j < columns; ++j) {
      double v = 0;
      HAMLET_CHECK(parse_double(fields[j], v), path, ", line ", number, ": feature ", j, " '", fields[j],
                   "' is not a finite number");
      values.push_back(v);
    }
    int64_t label = 0;
    HAMLET_CHECK(parse_int(fields[columns], label) && label >= 0 && label < classes, path, ", line ", number,
                 ": label '", fields[columns], "' is not an integer in 0..", classes - 1);
    labels.push_back(label);
  }
  const auto n = static_cast<int64_t>(labels.size());
  // The header's row count guards against a truncated copy that would otherwise load as a smaller data set.
  HAMLET_CHECK(n == rows, path, ": the header announces ", rows, " rows, the file holds ", n);
  d.features = at::from_blob(values.data(), {n, columns}, at::kDouble).clone();
  d.labels = at::from_blob(labels.data(), {n}, at::kLong).clone();
  d.name = name;
  d.source = path;
  return d;
}

TabularDataset load_breast_cancer(const std::string& dir) {
  const fs::path base = dir.empty() ? fs::path(data_root()) / "breast_cancer" : fs::path(dir);
  const fs::path file = base / "breast_cancer.csv";
  std::error_code ec;
  HAMLET_CHECK(fs::is_regular_file(file, ec), file.string(), " not found; the data root is ", data_root(), " (",
               data_root_source(), "). Run scripts/fetch_data.sh, which extracts it from Debian's python3-sklearn ",
               "package, or pass the directory holding breast_cancer.csv");
  return load_sklearn_table_csv(file.string(), "breast_cancer");
}

}  // namespace hamlet::data
