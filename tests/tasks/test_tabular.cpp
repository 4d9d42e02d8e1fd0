#include "support/catch.hpp"

#include <torch/csrc/autograd/autograd.h>
#include <torch/nn/functional/activation.h>
#include <torch/nn/functional/loss.h>
#include <torch/nn/modules/linear.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>

#include "hamlet/core/error.hpp"
#include "hamlet/core/seed.hpp"
#include "hamlet/tasks/registry.hpp"
#include "hamlet/tasks/tabular.hpp"
#include "support/data_files.hpp"
#include "support/test_support.hpp"
#include "task_fixtures.hpp"

using namespace hamlet;
using namespace hamlet::tasks;
using Catch::Contains;

namespace {

// A breast_cancer.csv-shaped file with 120 rows of 5 features (40 of class 0, 80 of class 1) whose class shifts
// the feature means, so the task works without the real data file.
void write_synthetic(const std::filesystem::path& dir) {
  std::filesystem::create_directories(dir);
  std::ofstream out(dir / "breast_cancer.csv");
  out << "120,5,malignant,benign\n";
  at::Generator gen = make_generator(21);
  const at::Tensor x = at::randn({120, 5}, gen, at::TensorOptions().dtype(at::kDouble));
  out.precision(17);
  for (int64_t i = 0; i < 120; ++i) {
    const int64_t label = i % 3 == 0 ? 0 : 1;
    for (int64_t j = 0; j < 5; ++j) out << x[i][j].item<double>() * (j + 1) + 3.0 * label * (j % 2) << ",";
    out << label << "\n";
  }
}

TabularOptions synthetic_options(const std::filesystem::path& dir, const std::string& loss = "faithful") {
  return TabularOptions::from_map({{"data_dir", dir.string()}, {"hidden", "8:6"}, {"batch_size", "16"},
                                   {"dtype", "float64"}, {"loss", loss}});
}

using test::loss_and_grads;

}  // namespace

TEST_CASE("tabular: shapes, parameter count, prepared rows, initialisation bounds, recorded options") {
  test::TempDir dir;
  write_synthetic(dir.path());
  TabularTask task(synthetic_options(dir.path()));
  // 120 rows: ceil(0.2 · 120) = 24 test rows, 96 training rows, then SMOTE balances the training classes.
  CHECK(task.prepared().test_x.size(0) == 24);
  CHECK(task.prepared().train_x.size(0) == 96 + task.prepared().synthetic);
  CHECK(at::bincount(task.prepared().train_y)[0].item<int64_t>() ==
        at::bincount(task.prepared().train_y)[1].item<int64_t>());
  CHECK(task.num_params() == (5 + 1) * 8 + (8 + 1) * 6 + (6 + 1) * 2);
  const auto batch = task.sample(Split::kTest, 0, 0, 3, at::kCPU);
  const TensorList p = batch->initial_params();
  REQUIRE(p.size() == 6);
  CHECK(p[0].sizes().vec() == std::vector<int64_t>({3, 8, 5}));
  CHECK(p[4].sizes().vec() == std::vector<int64_t>({3, 2, 6}));
  CHECK(p[5].sizes().vec() == std::vector<int64_t>({3, 2}));
  CHECK((batch->param_names() == std::vector<std::string>{"w0", "b0", "w1", "b1", "w2", "b2"}));
  CHECK(p[0].abs().max().item<double>() <= 1.0 / std::sqrt(5.0));
  CHECK(p[2].abs().max().item<double>() <= 1.0 / std::sqrt(8.0));
  const OptionMap o = task.options();
  CHECK(o.at("loss") == "faithful");
  CHECK(o.at("rows") == std::to_string(task.prepared().train_x.size(0)) + ":24");
  CHECK(o.at("split_seed") == "42");
  // The default network is the README's 30-64-32-2: 4,130 parameters on the real table.
  CHECK(TabularOptions().hidden == std::vector<int64_t>{64, 32});
  CHECK_THROWS_WITH(TabularOptions::from_map({{"loss", "l1"}}), Contains("tabular.loss"));
  CHECK_THROWS_WITH(TabularOptions::from_map({{"dropout", "1"}}), Contains("tabular.dropout"));
  CHECK_THROWS_WITH(TabularTask(TabularOptions::from_map({{"data_dir", (dir / "none").string()}})),
                    Contains("scripts/fetch_data.sh"));
}

TEST_CASE("tabular: minibatches visit the rows without replacement, dropout masks are 0 or 1/(1-p), per problem and step") {
  test::TempDir dir;
  write_synthetic(dir.path());
  TabularTask task(synthetic_options(dir.path()));
  const auto batch = task.sample(Split::kTrain, 3, 0, 4, at::kCPU);
  auto& tab = dynamic_cast<TabularBatch&>(*batch);
  const int64_t n = task.prepared().train_x.size(0), per_pass = n / 16;
  for (int64_t i = 0; i < 4; ++i) {
    std::set<int64_t> seen;
    for (int64_t t = 0; t < per_pass; ++t) {
      const at::Tensor idx = tab.minibatch_indices(t)[i];
      for (int64_t r = 0; r < 16; ++r) seen.insert(idx[r].item<int64_t>());
    }
    CHECK(static_cast<int64_t>(seen.size()) == per_pass * 16);
  }
  const TensorList m0 = tab.dropout_masks(0), m1 = tab.dropout_masks(1);
  REQUIRE(m0.size() == 2);
  CHECK(m0[0].sizes().vec() == std::vector<int64_t>({4, 16, 8}));
  CHECK(m0[1].sizes().vec() == std::vector<int64_t>({4, 16, 6}));
  const at::Tensor values = at::cat({m0[0].flatten(), m0[1].flatten()});
  CHECK(((values == 0) | ((values - 1.25).abs() < 1e-15)).all().item<bool>());
  CHECK(!at::equal(m0[0], m1[0]));
  CHECK(!at::equal(m0[0][0], m0[0][1]));
  CHECK(at::equal(m0[0], tab.dropout_masks(0)[0]));  // a pure function of the step
  // Over many steps the dropped share is p = 0.2.
  double dropped = 0, total = 0;
  for (int64_t t = 0; t < 50; ++t) {
    for (const auto& m : tab.dropout_masks(t)) {
      dropped += (m == 0).sum().item<double>();
      total += static_cast<double>(m.numel());
    }
  }
  CHECK(dropped / total == Approx(0.2).margin(0.01));
}

TEST_CASE("tabular: batched loss and gradients agree with an unbatched nn::Linear model under autograd") {
  test::TempDir dir;
  write_synthetic(dir.path());
  for (const std::string mode : {"faithful", "l2"}) {
    TabularTask task(synthetic_options(dir.path(), mode));
    const auto batch = task.sample(Split::kValidation, 5, 2, 3, at::kCPU);
    auto& tab = dynamic_cast<TabularBatch&>(*batch);
    const TensorList p0 = batch->initial_params();
    for (const int64_t step : {0, 7}) {
      const auto [loss, grads] = loss_and_grads(*batch, p0, step);
      const TensorList masks = tab.dropout_masks(step);
      for (int64_t i = 0; i < 3; ++i) {
        // Problem i as the seed builds it: Linear layers holding its weights, LeakyReLU(0.01), its dropout mask,
        // cross_entropy, and the parameter term as the seed computes it.
        std::vector<torch::nn::Linear> layers;
        for (std::size_t l = 0; l < 3; ++l) {
          torch::nn::Linear lin(torch::nn::LinearOptions(p0[2 * l].size(2), p0[2 * l].size(1)));
          lin->to(at::kDouble);
          torch::NoGradGuard no_grad;
          lin->weight.copy_(p0[2 * l][i]);
          lin->bias.copy_(p0[2 * l + 1][i]);
          layers.push_back(lin);
        }
        const at::Tensor idx = tab.minibatch_indices(step)[i];
        at::Tensor h = task.prepared().train_x.index_select(0, idx);
        const at::Tensor y = task.prepared().train_y.index_select(0, idx);
        for (std::size_t l = 0; l < 3; ++l) {
          h = layers[l]->forward(h);
          if (l < 2) {
            h = torch::nn::functional::leaky_relu(h, torch::nn::functional::LeakyReLUFuncOptions().negative_slope(0.01));
            h = h * masks[l][i];
          }
        }
        at::Tensor ref = torch::nn::functional::cross_entropy(h, y);
        if (mode == "faithful") {
          double norms = 0;
          for (auto& lin : layers) norms += lin->weight.norm().item<double>() + lin->bias.norm().item<double>();
          ref = ref + 0.01 * norms;  // a host float: no gradient
        } else {
          at::Tensor sq = at::zeros({}, at::kDouble);
          for (auto& lin : layers) sq = sq + lin->weight.pow(2).sum() + lin->bias.pow(2).sum();
          ref = ref + 0.005 * sq;
        }
        ref.backward();
        CHECK(loss[i].item<double>() == Approx(ref.item<double>()).epsilon(1e-12));
        for (std::size_t l = 0; l < 3; ++l) {
          CHECK(test::max_abs_diff(grads[2 * l][i], layers[l]->weight.grad()) < 1e-12);
          CHECK(test::max_abs_diff(grads[2 * l + 1][i], layers[l]->bias.grad()) < 1e-12);
        }
      }
    }
  }
}

TEST_CASE("tabular: problem i alone equals problem i in a batch (initialisation, minibatches, dropout, loss)") {
  test::TempDir dir;
  write_synthetic(dir.path());
  TabularTask task(synthetic_options(dir.path()));
  const auto all = task.sample(Split::kTest, 9, 0, 5, at::kCPU);
  const auto one = task.sample(Split::kTest, 9, 3, 1, at::kCPU);
  const TensorList pa = all->initial_params(), p1 = one->initial_params();
  for (std::size_t t = 0; t < pa.size(); ++t) CHECK(at::equal(pa[t][3], p1[t][0]));
  for (int64_t step = 0; step < 20; ++step) {
    const auto [la, ga] = loss_and_grads(*all, pa, step);
    const auto [l1, g1] = loss_and_grads(*one, p1, step);
    CHECK(la[3].item<double>() == Approx(l1[0].item<double>()).epsilon(1e-13));
    CHECK(test::max_abs_diff(ga[0][3], g1[0][0]) < 1e-13);
  }
  // Other pools draw other problems.
  const auto val = task.sample(Split::kValidation, 9, 3, 1, at::kCPU);
  CHECK(!at::equal(val->initial_params()[0], p1[0]));
  CHECK(make_task("tabular", {{"data_dir", dir.path().string()}})->name() == "tabular");
}

TEST_CASE("tabular on the breast-cancer table: Adam trains HamiltonianNN to > 90 % test accuracy") {
  const auto dir = test::data_dir() / "breast_cancer";
  if (!test::have_data(dir / "breast_cancer.csv")) return;
  TabularTask task(TabularOptions::from_map({{"data_dir", dir.string()}}));
  CHECK(task.num_params() == 4130);
  CHECK(task.prepared().train_x.size(0) == 2 * at::bincount(task.prepared().train_y).max().item<int64_t>());
  const auto batch = task.sample(Split::kTest, 0, 0, 4, at::kCPU);
  auto& tab = dynamic_cast<TabularBatch&>(*batch);
  // Adam written out here (the tasks tests link no optimizers): lr 0.003, β = (0.9, 0.999), ε = 1e-8.
  TensorList params = batch->initial_params();
  TensorList m1, m2;
  for (const auto& p : params) {
    m1.push_back(at::zeros_like(p));
    m2.push_back(at::zeros_like(p));
  }
  const double start = batch->loss(params, 0).mean().item<double>();
  double end = 0;
  for (int64_t t = 0; t < 150; ++t) {
    const auto [loss, grads] = loss_and_grads(*batch, params, t);
    const double c1 = 1 - std::pow(0.9, t + 1), c2 = 1 - std::pow(0.999, t + 1);
    for (std::size_t k = 0; k < params.size(); ++k) {
      m1[k] = 0.9 * m1[k] + 0.1 * grads[k];
      m2[k] = 0.999 * m2[k] + 0.001 * grads[k] * grads[k];
      params[k] = params[k] - 0.003 * (m1[k] / c1) / ((m2[k] / c2).sqrt() + 1e-8);
    }
    end = loss.mean().item<double>();
  }
  CHECK(start > 0.55);
  CHECK(end < 0.45);
  for (const auto& m : tab.test_metrics(params)) {
    CHECK(m.accuracy > 0.9);
    CHECK(m.auc > 0.9);
  }
}
