#include "support/catch.hpp"

#include <cmath>
#include <vector>

#include "hamlet/core/error.hpp"
#include "hamlet/core/seed.hpp"
#include "hamlet/tasks/classification_metrics.hpp"

using namespace hamlet;
using namespace hamlet::tasks;

namespace {

at::Tensor longs(std::vector<int64_t> v) { return at::tensor(v, at::TensorOptions().dtype(at::kLong)); }

// The definitions written out over the samples, without a confusion matrix: per class c, TP/FP/FN by counting;
// weights by the class's share of true labels; zero_division = 1.
ClassificationMetrics by_counting(const std::vector<int64_t>& y, const std::vector<int64_t>& p, int64_t classes) {
  ClassificationMetrics m;
  const double n = static_cast<double>(y.size());
  for (std::size_t i = 0; i < y.size(); ++i) m.accuracy += (y[i] == p[i]) / n;
  for (int64_t c = 0; c < classes; ++c) {
    double tp = 0, fp = 0, fn = 0, support = 0;
    for (std::size_t i = 0; i < y.size(); ++i) {
      tp += y[i] == c && p[i] == c;
      fp += y[i] != c && p[i] == c;
      fn += y[i] == c && p[i] != c;
      support += y[i] == c;
    }
    const double precision = tp + fp > 0 ? tp / (tp + fp) : 1.0;
    const double recall = tp + fn > 0 ? tp / (tp + fn) : 1.0;
    const double f1 = precision + recall > 0 ? 2 * precision * recall / (precision + recall) : 0.0;
    m.precision += support / n * precision;
    m.recall += support / n * recall;
    m.f1 += support / n * f1;
  }
  return m;
}

// ROC AUC as the Mann–Whitney statistic over (positive, negative) pairs of the hard scores, ties counting ½.
double mann_whitney_auc(const std::vector<int64_t>& y, const std::vector<int64_t>& p) {
  double pairs = 0, wins = 0;
  for (std::size_t i = 0; i < y.size(); ++i) {
    for (std::size_t j = 0; j < y.size(); ++j) {
      if (y[i] != 1 || y[j] != 0) continue;
      pairs += 1;
      wins += p[i] > p[j] ? 1.0 : p[i] == p[j] ? 0.5 : 0.0;
    }
  }
  return wins / pairs;
}

}  // namespace

TEST_CASE("classification metrics: the §7.4 known answer of evaluate_model") {
  const auto m = classification_metrics(longs({0, 0, 1, 1}), longs({0, 1, 1, 1}));
  CHECK(m.accuracy == Approx(0.75).margin(1e-15));
  CHECK(m.precision == Approx(0.833333).margin(1e-6));
  CHECK(m.recall == Approx(0.75).margin(1e-15));
  CHECK(m.f1 == Approx(0.733333).margin(1e-6));
  CHECK(m.auc == Approx(0.75).margin(1e-15));
}

TEST_CASE("classification metrics agree with counting over samples and the hard-label AUC with Mann-Whitney") {
  at::Generator gen = make_generator(17);
  for (int trial = 0; trial < 20; ++trial) {
    const int64_t n = 5 + trial * 3;
    const at::Tensor y = at::randint(0, 2, {n}, gen, at::TensorOptions().dtype(at::kLong));
    // Predictions right 70 % of the time, so every cell of the confusion matrix occurs.
    const at::Tensor flip = at::rand({n}, gen, at::TensorOptions().dtype(at::kDouble)) < 0.3;
    const at::Tensor p = at::where(flip, 1 - y, y);
    const std::vector<int64_t> yv(y.data_ptr<int64_t>(), y.data_ptr<int64_t>() + n);
    const std::vector<int64_t> pv(p.data_ptr<int64_t>(), p.data_ptr<int64_t>() + n);
    const auto got = classification_metrics(y, p);
    const auto ref = by_counting(yv, pv, 2);
    CHECK(got.accuracy == Approx(ref.accuracy).margin(1e-12));
    CHECK(got.precision == Approx(ref.precision).margin(1e-12));
    CHECK(got.recall == Approx(ref.recall).margin(1e-12));
    CHECK(got.f1 == Approx(ref.f1).margin(1e-12));
    const bool both = y.sum().item<int64_t>() > 0 && y.sum().item<int64_t>() < n;
    if (both) {
      CHECK(got.auc == Approx(mann_whitney_auc(yv, pv)).margin(1e-12));
    } else {
      CHECK(std::isnan(got.auc));
    }
  }
}

TEST_CASE("classification metrics: zero_division = 1, one class only, bad shapes") {
  // Class 1 is never predicted: its precision counts as 1, its F1 as 0.
  const auto m = classification_metrics(longs({0, 0, 1}), longs({0, 0, 0}));
  CHECK(m.precision == Approx(2.0 / 3.0 * (2.0 / 3.0) + 1.0 / 3.0 * 1.0).margin(1e-12));
  CHECK(m.f1 == Approx(2.0 / 3.0 * 0.8).margin(1e-12));
  CHECK(m.auc == Approx(0.5).margin(1e-15));
  CHECK(std::isnan(classification_metrics(longs({1, 1}), longs({1, 0})).auc));
  CHECK_THROWS_AS(classification_metrics(longs({0, 1}), longs({0})), Error);
}
