#pragma once
// hamiltonian_ai's prepare_data (docs/methods.md §7.4), in its order:
//   1. a seeded train/test split, not stratified: the rows are shuffled by a generator seeded from `seed` and the
//      first ceil(test_size·N) rows become the test part (scikit-learn's rounding of test_size);
//   2. standardisation fitted on the training part only: mean and population standard deviation (ddof 0) per
//      feature, a constant feature keeps scale 1 (as StandardScaler does), applied to both parts;
//   3. SMOTE (hamlet/data/smote.hpp, k nearest neighbours) on the standardised training part only, until the
//      classes are balanced. The test part keeps its original rows.
// The seed's Python random stream cannot be reproduced: the split and the synthetic rows differ from the seed's,
// the class counts do not.
#include <ATen/ATen.h>

#include <cstdint>

#include "hamlet/data/breast_cancer.hpp"

namespace hamlet::data {

struct PrepareTabularOptions {
  double test_size = 0.2;  // share of the rows in the test part, in (0, 1)
  uint64_t seed = 42;      // the seed's random_state for both the split and SMOTE
  bool smote = true;
  int64_t smote_k = 5;
};

struct PreparedTabular {
  at::Tensor train_x, train_y;  // [n_train (+ synthetic), D] float64 standardised, [..] int64
  at::Tensor test_x, test_y;    // [n_test, D] float64 standardised with the training statistics, [n_test]
  at::Tensor train_rows, test_rows;  // int64 indices into the data set of the original rows of each part
  at::Tensor mean, scale;       // [D] the training part's statistics
  int64_t synthetic = 0;        // rows SMOTE added
};

PreparedTabular prepare_tabular(const TabularDataset& data, const PrepareTabularOptions& options);

}  // namespace hamlet::data
