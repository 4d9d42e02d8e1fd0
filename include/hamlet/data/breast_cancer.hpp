#pragma once
// The Wisconsin diagnostic breast-cancer table as Debian's scikit-learn package ships it:
// /usr/lib/python3/dist-packages/sklearn/datasets/data/breast_cancer.csv (sha256 fed3eb72...2172ed). A header line
// "569,30,malignant,benign" (rows, features, the names of labels 0 and 1), then 569 rows of 30 real features and
// an integer label (0 = malignant: 212 rows, 1 = benign: 357 rows). scripts/fetch_data.sh extracts it from the
// python3-sklearn package (without installing it), checks the hash and puts it in <data root>/breast_cancer/.
// The tabular task (hamlet/tasks/tabular.hpp) trains on it.
#include <ATen/ATen.h>

#include <cstdint>
#include <string>
#include <vector>

namespace hamlet::data {

// A table of real features with integer class labels.
struct TabularDataset {
  at::Tensor features;  // [N, D] float64, as written in the file
  at::Tensor labels;    // [N] int64 in [0, classes)
  std::vector<std::string> class_names;  // from the header: {"malignant", "benign"}
  std::string name;     // "breast_cancer"
  std::string source;   // the file it was read from
  int64_t size() const { return features.size(0); }
};

// Reads a CSV in scikit-learn's bundled-table layout: header "N,D,name0,name1,...", then N rows of D numbers and a
// label in [0, number of names). Throws hamlet::Error naming the file and line for a row that does not fit, and
// when the row count differs from the header's N.
TabularDataset load_sklearn_table_csv(const std::string& path, const std::string& name);

// The breast-cancer table from `dir` (default: <data root>/breast_cancer), file breast_cancer.csv; an error for a
// missing file names the data root and scripts/fetch_data.sh.
TabularDataset load_breast_cancer(const std::string& dir = "");

}  // namespace hamlet::data
