#pragma once
// SMOTE, the synthetic minority over-sampling of Chawla et al. (2002), as imbalanced-learn's SMOTE does it by
// default (docs/methods.md §7.4, prepare_data step 3): every class smaller than the largest receives synthetic rows
// until all classes have the largest class's count. A synthetic row is x + u·(x_nn − x) with x a row of that class,
// x_nn one of its k nearest neighbours (Euclidean, within the class, x itself excluded) and u ~ U(0, 1); the pair
// (x, x_nn) is drawn uniformly among the class's m·k pairs, with replacement.
//
// Deterministic for a given generator; it cannot reproduce Python's random stream (compare class counts, not rows).
#include <ATen/ATen.h>

#include <cstdint>

namespace hamlet::data {

struct SmoteResult {
  at::Tensor features;   // [N + S, D]: the N input rows first, in order, then the S synthetic rows
  at::Tensor labels;     // [N + S]
  at::Tensor base;       // [S] int64: input row each synthetic row starts from
  at::Tensor neighbour;  // [S] int64: input row it moves towards (one of base's k nearest in its class)
  at::Tensor gap;        // [S] float64: u of x + u·(x_nn − x)
};

// k nearest neighbours of every row of x [m, D] among the other rows, [m, k] int64 row indices, nearest first;
// equal distances are ordered by row index. Needs 1 <= k < m.
at::Tensor nearest_neighbours(const at::Tensor& x, int64_t k);

// Balances the classes of (features [N, D] floating, labels [N] int64 >= 0). A class that needs synthetic rows must
// have more than k rows (an error names the class and its count). Synthetic rows are appended class by class in
// increasing label order. Arithmetic in float64; the result has the input's dtype.
SmoteResult smote(const at::Tensor& features, const at::Tensor& labels, int64_t k, at::Generator& generator);

}  // namespace hamlet::data
