#include "support/catch.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "hamlet/core/error.hpp"
#include "hamlet/core/seed.hpp"
#include "hamlet/data/smote.hpp"
#include "support/test_support.hpp"

using namespace hamlet;
using Catch::Contains;

namespace {

const auto kF64 = at::TensorOptions().dtype(at::kDouble);
const auto kI64 = at::TensorOptions().dtype(at::kLong);

// The k nearest other rows of row i by a plain loop over doubles (ties by index), the reference for
// nearest_neighbours.
std::vector<int64_t> brute_force_knn(const std::vector<std::vector<double>>& x, std::size_t i, std::size_t k) {
  std::vector<std::pair<double, std::size_t>> d;
  for (std::size_t j = 0; j < x.size(); ++j) {
    if (j == i) continue;
    double s = 0;
    for (std::size_t c = 0; c < x[i].size(); ++c) s += (x[i][c] - x[j][c]) * (x[i][c] - x[j][c]);
    d.emplace_back(s, j);
  }
  std::sort(d.begin(), d.end());
  std::vector<int64_t> out;
  for (std::size_t r = 0; r < k; ++r) out.push_back(static_cast<int64_t>(d[r].second));
  return out;
}

std::vector<std::vector<double>> rows_of(const at::Tensor& x) {
  std::vector<std::vector<double>> out(x.size(0), std::vector<double>(x.size(1)));
  const at::Tensor c = x.to(at::kDouble).contiguous();
  for (int64_t i = 0; i < x.size(0); ++i) {
    for (int64_t j = 0; j < x.size(1); ++j) out[i][j] = c[i][j].item<double>();
  }
  return out;
}

}  // namespace

TEST_CASE("smote: nearest neighbours, known answers and ties by row index") {
  // 1-D points 0, 1, 3, 7: row 2 (x = 3) is 2 from row 1 and 3 from row 0; row 3 (x = 7) is 4 from row 2.
  const at::Tensor x = at::tensor({0.0, 1.0, 3.0, 7.0}, kF64).unsqueeze(1);
  const at::Tensor nn = data::nearest_neighbours(x, 2);
  CHECK(at::equal(nn, at::tensor({1, 2, 0, 2, 1, 0, 2, 1}, kI64).view({4, 2})));
  // x = 0, 2, 4: the middle row is equally far from both ends and lists the lower index first.
  const at::Tensor tie = data::nearest_neighbours(at::tensor({0.0, 2.0, 4.0}, kF64).unsqueeze(1), 2);
  CHECK(at::equal(tie[1], at::tensor({0, 2}, kI64)));
  CHECK_THROWS_WITH(data::nearest_neighbours(x, 4), Contains("at least k + 1 = 5 rows, got 4"));
}

TEST_CASE("smote: nearest neighbours agree with a brute-force loop") {
  at::Generator gen = make_generator(3);
  const at::Tensor x = at::randn({40, 6}, gen, kF64);
  const at::Tensor nn = data::nearest_neighbours(x, 5);
  const auto rows = rows_of(x);
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const std::vector<int64_t> ref = brute_force_knn(rows, i, 5);
    for (int64_t r = 0; r < 5; ++r) CHECK(nn[static_cast<int64_t>(i)][r].item<int64_t>() == ref[r]);
  }
}

TEST_CASE("smote: synthetic rows lie on segments to one of the 5 nearest same-class rows, classes end balanced") {
  // Three classes of 50, 17 and 9 rows in 4-D, shifted apart so that a wrong-class neighbour would show.
  at::Generator gen = make_generator(11);
  const at::Tensor y = at::cat({at::full({50}, 0, kI64), at::full({17}, 1, kI64), at::full({9}, 2, kI64)});
  const at::Tensor x = at::randn({76, 4}, gen, kF64) + 10.0 * y.to(at::kDouble).unsqueeze(1);
  const at::Tensor order = at::randperm(76, gen, kI64);  // interleave the classes
  const at::Tensor xs = x.index_select(0, order), ys = y.index_select(0, order);
  at::Generator sgen = make_generator(42);
  const data::SmoteResult r = data::smote(xs, ys, 5, sgen);

  REQUIRE(r.features.size(0) == 150);
  CHECK(at::equal(at::bincount(r.labels), at::tensor({50, 50, 50}, kI64)));
  CHECK(at::equal(r.features.narrow(0, 0, 76), xs));  // the input rows come first, unchanged
  CHECK(at::equal(r.labels.narrow(0, 0, 76), ys));
  REQUIRE(r.base.numel() == 74);

  const auto all_rows = rows_of(xs);
  for (int64_t s = 0; s < 74; ++s) {
    const int64_t b = r.base[s].item<int64_t>(), n = r.neighbour[s].item<int64_t>();
    const int64_t c = ys[b].item<int64_t>();
    CHECK(ys[n].item<int64_t>() == c);
    CHECK(r.labels[76 + s].item<int64_t>() == c);
    // The neighbour is among base's 5 nearest rows of its class, by brute force over that class alone.
    std::vector<std::vector<double>> cls;
    std::vector<int64_t> index;
    for (int64_t i = 0; i < 76; ++i) {
      if (ys[i].item<int64_t>() == c) {
        cls.push_back(all_rows[i]);
        index.push_back(i);
      }
    }
    const auto where = std::find(index.begin(), index.end(), b) - index.begin();
    const auto knn = brute_force_knn(cls, static_cast<std::size_t>(where), 5);
    bool found = false;
    for (auto j : knn) found = found || index[j] == n;
    CHECK(found);
    // On the segment: new − x_b = u·(x_n − x_b) with u ∈ [0, 1], u recovered by projection, not from r.gap.
    const at::Tensor d = xs[n] - xs[b], v = r.features[76 + s] - xs[b];
    const double u = (v * d).sum().item<double>() / (d * d).sum().item<double>();
    CHECK(u >= 0.0);
    CHECK(u <= 1.0);
    CHECK(test::max_abs_diff(v, u * d) < 1e-12);
    CHECK(u == Approx(r.gap[s].item<double>()).margin(1e-12));
  }
}

TEST_CASE("smote: deterministic for a seed, balanced input unchanged, too small a class refused") {
  at::Generator gen = make_generator(5);
  const at::Tensor x = at::randn({30, 3}, gen, kF64);
  const at::Tensor y = at::cat({at::zeros({20}, kI64), at::ones({10}, kI64)});
  at::Generator a = make_generator(1), b = make_generator(1);
  CHECK(at::equal(data::smote(x, y, 5, a).features, data::smote(x, y, 5, b).features));
  const at::Tensor balanced = at::cat({at::zeros({15}, kI64), at::ones({15}, kI64)});
  at::Generator c = make_generator(1);
  const auto same = data::smote(x, balanced, 5, c);
  CHECK(at::equal(same.features, x));
  CHECK(same.base.numel() == 0);
  const at::Tensor tiny = at::cat({at::zeros({25}, kI64), at::ones({5}, kI64)});
  at::Generator d = make_generator(1);
  CHECK_THROWS_WITH(data::smote(x, tiny, 5, d), Contains("class 1 has 5 rows, fewer than k + 1 = 6"));
  // float32 in, float32 out.
  at::Generator e = make_generator(1);
  CHECK(data::smote(x.to(at::kFloat), y, 5, e).features.scalar_type() == at::kFloat);
}
