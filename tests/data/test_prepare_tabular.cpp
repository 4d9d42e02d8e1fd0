#include "support/catch.hpp"

#include <filesystem>

#include "hamlet/core/error.hpp"
#include "hamlet/core/seed.hpp"
#include "hamlet/data/breast_cancer.hpp"
#include "hamlet/data/prepare_tabular.hpp"
#include "support/data_files.hpp"
#include "support/test_support.hpp"

using namespace hamlet;
using Catch::Contains;

namespace {

// A small imbalanced table with features on very different scales, for the checks that need no data files.
data::TabularDataset synthetic_table() {
  at::Generator gen = make_generator(9);
  data::TabularDataset d;
  d.features = at::randn({100, 4}, gen, at::TensorOptions().dtype(at::kDouble)) *
               at::tensor({1.0, 10.0, 1000.0, 0.01}, at::kDouble);
  d.labels = (at::arange(100, at::kLong) % 10 < 3).to(at::kLong);  // 30 ones, 70 zeros
  d.name = "synthetic";
  return d;
}

void check_prepared(const data::TabularDataset& d, const data::PreparedTabular& p, int64_t n_test) {
  const int64_t n = d.size();
  REQUIRE(p.test_rows.numel() == n_test);
  REQUIRE(p.train_rows.numel() == n - n_test);
  // The two parts are a partition of the rows.
  CHECK(at::equal(std::get<0>(at::cat({p.train_rows, p.test_rows}).sort()), at::arange(n, at::kLong)));
  // Standardised with the training part's statistics: the original training rows have mean 0 and population
  // standard deviation 1; the test rows map back to the raw data with the same statistics.
  const int64_t n_train = n - n_test;
  const at::Tensor train_orig = p.train_x.narrow(0, 0, n_train);
  CHECK(test::max_abs_diff(train_orig.mean(0), at::zeros({d.features.size(1)}, at::kDouble)) < 1e-12);
  CHECK(test::max_abs_diff(train_orig.std(0, false), at::ones({d.features.size(1)}, at::kDouble)) < 1e-12);
  CHECK(test::max_rel_diff(train_orig * p.scale + p.mean, d.features.index_select(0, p.train_rows)) < 1e-12);
  CHECK(test::max_rel_diff(p.test_x * p.scale + p.mean, d.features.index_select(0, p.test_rows)) < 1e-12);
  CHECK(at::equal(p.test_y, d.labels.index_select(0, p.test_rows)));
  // SMOTE on the training part only: balanced there at the majority count of the training part.
  const at::Tensor before = at::bincount(d.labels.index_select(0, p.train_rows));
  const at::Tensor after = at::bincount(p.train_y);
  CHECK(after[0].item<int64_t>() == after[1].item<int64_t>());
  CHECK(after[0].item<int64_t>() == before.max().item<int64_t>());
  CHECK(p.synthetic == p.train_x.size(0) - n_train);
  CHECK(p.synthetic == before.max().item<int64_t>() - before.min().item<int64_t>());
}

}  // namespace

TEST_CASE("prepare_tabular: split, scaler fitted on the training part, SMOTE on it only (synthetic table)") {
  const auto d = synthetic_table();
  const auto p = data::prepare_tabular(d, {});
  check_prepared(d, p, 20);  // ceil(0.2 · 100)
  // One seed fixes everything; another moves the split; SMOTE off leaves the split where it was.
  const auto again = data::prepare_tabular(d, {});
  CHECK(at::equal(again.train_x, p.train_x));
  data::PrepareTabularOptions other;
  other.seed = 7;
  CHECK(!at::equal(data::prepare_tabular(d, other).test_rows, p.test_rows));
  data::PrepareTabularOptions plain;
  plain.smote = false;
  const auto q = data::prepare_tabular(d, plain);
  CHECK(q.synthetic == 0);
  CHECK(at::equal(q.test_rows, p.test_rows));
  CHECK(at::equal(q.train_x, p.train_x.narrow(0, 0, 80)));
  data::PrepareTabularOptions bad;
  bad.test_size = 1.0;
  CHECK_THROWS_WITH(data::prepare_tabular(d, bad), Contains("test_size must be in (0, 1)"));
}

TEST_CASE("prepare_tabular on the breast-cancer table: 455 / 114 rows, balanced training part") {
  const auto dir = test::data_dir() / "breast_cancer";
  if (!test::have_data(dir / "breast_cancer.csv")) return;
  const auto d = data::load_breast_cancer(dir.string());
  const auto p = data::prepare_tabular(d, {});
  check_prepared(d, p, 114);  // ceil(0.2 · 569) = 114, as scikit-learn's train_test_split gives
  CHECK(p.test_x.size(1) == 30);
}
