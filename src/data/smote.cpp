#include "hamlet/data/smote.hpp"

#include <limits>
#include <vector>

#include "hamlet/core/error.hpp"

namespace hamlet::data {

at::Tensor nearest_neighbours(const at::Tensor& x, int64_t k) {
  const int64_t m = x.size(0);
  HAMLET_CHECK(k >= 1 && k < m, "smote: k = ", k, " nearest neighbours need at least k + 1 = ", k + 1,
               " rows, got ", m);
  const at::Tensor xd = x.to(at::kDouble);
  // Squared distances from exact differences rather than the ‖a‖² + ‖b‖² − 2ab expansion, so near-duplicate rows
  // (which SMOTE'd or standardised data have) keep their order instead of drowning in cancellation.
  at::Tensor d2 = (xd.unsqueeze(1) - xd.unsqueeze(0)).pow(2).sum(-1);
  // A row is not its own neighbour.
  d2.fill_diagonal_(std::numeric_limits<double>::infinity());
  // A stable sort makes ties resolve by row index, so the result does not depend on the sort implementation.
  const at::Tensor order = std::get<1>(d2.sort(/*stable=*/true, /*dim=*/1, /*descending=*/false));
  return order.narrow(1, 0, k).contiguous();
}

SmoteResult smote(const at::Tensor& features, const at::Tensor& labels, int64_t k, at::Generator& generator) {
  HAMLET_CHECK(features.dim() == 2 && labels.dim() == 1 && features.size(0) == labels.size(0), "smote: expected ",
               "features [N, D] and labels [N], got ", features.sizes(), " and ", labels.sizes());
  HAMLET_CHECK(features.is_floating_point(), "smote: features must be floating point");
  HAMLET_CHECK(k >= 1, "smote: k must be >= 1, got ", k);
  const at::Tensor y = labels.to(at::kLong).cpu();
  HAMLET_CHECK(y.numel() > 0 && y.min().item<int64_t>() >= 0, "smote: labels must be non-negative integers");
  const at::Tensor x = features.to(at::kDouble).cpu();
  const at::Tensor counts = at::bincount(y);
  const int64_t target = counts.max().item<int64_t>();

  std::vector<at::Tensor> new_rows, bases, neighbours, gaps;
  std::vector<at::Tensor> new_labels;
  const auto f64 = at::TensorOptions().dtype(at::kDouble);
  for (int64_t c = 0; c < counts.numel(); ++c) {
    const int64_t m = counts[c].item<int64_t>();
    const int64_t missing = target - m;
    if (m == 0 || missing == 0) continue;
    HAMLET_CHECK(m > k, "smote: class ", c, " has ", m, " rows, fewer than k + 1 = ", k + 1,
                 " (k nearest neighbours plus the row itself)");
    const at::Tensor rows = (y == c).nonzero().squeeze(1);  // input indices of class c, increasing
    const at::Tensor xc = x.index_select(0, rows);
    const at::Tensor nn = nearest_neighbours(xc, k);  // [m, k], indices into rows
    // One draw over the m·k (row, neighbour) pairs, as imbalanced-learn does, then one gap per synthetic row.
    const at::Tensor pair = at::randint(0, m * k, {missing}, generator, at::TensorOptions().dtype(at::kLong));
    const at::Tensor gap = at::rand({missing}, generator, f64);
    const at::Tensor local_base = pair.div(k, "floor");
    const at::Tensor local_nn = nn.reshape({-1}).index_select(0, pair);
    const at::Tensor xb = xc.index_select(0, local_base), xn = xc.index_select(0, local_nn);
    new_rows.push_back(xb + gap.unsqueeze(1) * (xn - xb));
    bases.push_back(rows.index_select(0, local_base));
    neighbours.push_back(rows.index_select(0, local_nn));
    gaps.push_back(gap);
    new_labels.push_back(at::full({missing}, c, at::TensorOptions().dtype(at::kLong)));
  }
  SmoteResult r;
  const auto empty_long = at::empty({0}, at::TensorOptions().dtype(at::kLong));
  if (new_rows.empty()) {
    r.features = features.clone();
    r.labels = labels.clone();
    r.base = empty_long;
    r.neighbour = empty_long;
    r.gap = at::empty({0}, f64);
    return r;
  }
  new_rows.insert(new_rows.begin(), x);
  new_labels.insert(new_labels.begin(), y);
  r.features = at::cat(new_rows).to(features.dtype());
  r.labels = at::cat(new_labels).to(labels.dtype());
  r.base = at::cat(bases);
  r.neighbour = at::cat(neighbours);
  r.gap = at::cat(gaps);
  return r;
}

}  // namespace hamlet::data
