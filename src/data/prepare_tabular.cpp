#include "hamlet/data/prepare_tabular.hpp"

#include <cmath>

#include "hamlet/core/error.hpp"
#include "hamlet/core/seed.hpp"
#include "hamlet/data/smote.hpp"

namespace hamlet::data {
namespace {

// Independent streams for the split and for SMOTE, both derived from the one seed the caller gives (the seed
// system passes random_state = 42 to both); adding SMOTE or not must not move the split.
constexpr uint64_t kSplitStream = 1;
constexpr uint64_t kSmoteStream = 2;

}  // namespace

PreparedTabular prepare_tabular(const TabularDataset& data, const PrepareTabularOptions& options) {
  HAMLET_CHECK(options.test_size > 0 && options.test_size < 1, "prepare_tabular: test_size must be in (0, 1), got ",
               options.test_size);
  const int64_t n = data.size();
  // scikit-learn's train_test_split rounds the test part up and the training part down.
  const auto n_test = static_cast<int64_t>(std::ceil(options.test_size * static_cast<double>(n)));
  HAMLET_CHECK(n_test >= 1 && n_test < n, "prepare_tabular: test_size ", options.test_size, " of ", n,
               " rows leaves no training or no test rows");
  at::Generator split_gen = make_generator(mix_seed(options.seed, kSplitStream));
  const at::Tensor perm = at::randperm(n, split_gen, at::TensorOptions().dtype(at::kLong));
  PreparedTabular p;
  p.test_rows = perm.narrow(0, 0, n_test).contiguous();
  p.train_rows = perm.narrow(0, n_test, n - n_test).contiguous();

  const at::Tensor x = data.features.to(at::kDouble);
  const at::Tensor train_raw = x.index_select(0, p.train_rows);
  p.mean = train_raw.mean(0);
  // Population standard deviation, like StandardScaler; a constant feature would divide by zero, so it keeps 1.
  const at::Tensor sd = train_raw.std(0, /*unbiased=*/false);
  p.scale = at::where(sd > 0, sd, at::ones_like(sd));
  const at::Tensor train_x = (train_raw - p.mean) / p.scale;
  p.test_x = (x.index_select(0, p.test_rows) - p.mean) / p.scale;
  p.test_y = data.labels.index_select(0, p.test_rows);
  const at::Tensor train_y = data.labels.index_select(0, p.train_rows);
  if (options.smote) {
    at::Generator smote_gen = make_generator(mix_seed(options.seed, kSmoteStream));
    SmoteResult s = smote(train_x, train_y, options.smote_k, smote_gen);
    p.train_x = s.features;
    p.train_y = s.labels;
    p.synthetic = s.base.numel();
  } else {
    p.train_x = train_x;
    p.train_y = train_y;
  }
  return p;
}

}  // namespace hamlet::data
