#include "support/catch.hpp"

#include <torch/csrc/autograd/autograd.h>

#include <cmath>
#include <set>

#include "hamlet/data/idx.hpp"
#include "hamlet/tasks/mlp.hpp"
#include "support/data_files.hpp"
#include "support/test_support.hpp"
#include "task_fixtures.hpp"

using namespace hamlet;
using namespace hamlet::tasks;

namespace {

// A small synthetic MNIST-format dataset: n images of 28x28 with random bytes, labels i % 10 (gzipped, as the
// reader accepts).
void write_synthetic(const std::filesystem::path& dir, int64_t n) {
  test::write_synthetic_idx(dir, n, 28, 28, 12345, "train-labels-idx1-ubyte.gz");
}

MlpOptions synthetic_options(const std::filesystem::path& dir) {
  return MlpOptions::from_map({{"dataset", "idx"}, {"data_dir", dir.string()}, {"batch_size", "16"},
                               {"dtype", "float64"}});
}

using test::loss_and_grads;

}  // namespace

TEST_CASE("MLP shapes, parameter count, initialisation bounds and the closed-form loss") {
  test::TempDir dir;
  write_synthetic(dir.path(), 400);
  MlpTask task(synthetic_options(dir.path()));
  CHECK(task.num_params() == 15910);
  CHECK(task.split().train.numel() == 200);
  CHECK(task.split().validation.numel() == 80);
  CHECK(task.split().test.numel() == 120);
  const auto batch = task.sample(Split::kTest, 0, 0, 3, at::kCPU);
  const TensorList p = batch->initial_params();
  REQUIRE(p.size() == 4);
  CHECK(p[0].sizes().vec() == std::vector<int64_t>({3, 20, 784}));
  CHECK(p[1].sizes().vec() == std::vector<int64_t>({3, 20}));
  CHECK(p[2].sizes().vec() == std::vector<int64_t>({3, 10, 20}));
  CHECK(p[3].sizes().vec() == std::vector<int64_t>({3, 10}));
  CHECK((batch->param_names() == std::vector<std::string>{"w0", "b0", "w1", "b1"}));
  // Default Linear init: U(-1/sqrt(fan_in), 1/sqrt(fan_in)), 1/sqrt(784) = 0.0357142857, 1/sqrt(20) = 0.2236067977.
  CHECK(p[0].abs().max().item<double>() <= 1.0 / 28.0);
  CHECK(p[0].abs().max().item<double>() > 0.9 / 28.0);
  CHECK(p[2].abs().max().item<double>() <= 1.0 / std::sqrt(20.0));
  CHECK(p[3].abs().max().item<double>() > 0.5 / std::sqrt(20.0));

  // Closed form for problem 1 at step 2: mean over the minibatch of −log softmax(W1 σ(W0 x + b0) + b1)[label].
  auto& mlp = dynamic_cast<MlpBatch&>(*batch);
  const at::Tensor loss = batch->loss(p, 2);
  const at::Tensor idx = mlp.minibatch_indices(2)[1];
  const auto& data = task.dataset();
  const at::Tensor test_idx = task.split().test.index_select(0, idx);
  const at::Tensor x = data.images.index_select(0, test_idx).to(at::kDouble);
  const at::Tensor y = data.labels.index_select(0, test_idx);
  const at::Tensor h = at::sigmoid(x.matmul(p[0][1].t()) + p[1][1]);
  const at::Tensor z = h.matmul(p[2][1].t()) + p[3][1];
  const at::Tensor lse = (z - std::get<0>(z.max(1, true))).exp().sum(1).log() + std::get<0>(z.max(1));
  const double expected = (lse - z.gather(1, y.unsqueeze(1)).squeeze(1)).mean().item<double>();
  CHECK(loss[1].item<double>() == Approx(expected).epsilon(1e-12));
  // Near chance level at initialisation.
  CHECK(std::abs(loss.mean().item<double>() - std::log(10.0)) < 0.3);
}

TEST_CASE("MLP gradient matches central finite differences") {
  test::TempDir dir;
  write_synthetic(dir.path(), 200);
  for (const std::string act : {"sigmoid", "relu", "tanh", "elu"}) {
    MlpOptions o = synthetic_options(dir.path());
    o.activation = act;
    o.hidden = {5, 4};
    MlpTask task(o);
    const auto batch = task.sample(Split::kTrain, 1, 0, 2, at::kCPU);
    const TensorList p = batch->initial_params();
    auto [loss, grads] = loss_and_grads(*batch, p, 0);
    // Probe a few coordinates of every tensor.
    for (std::size_t t = 0; t < p.size(); ++t) {
      for (int64_t k : {int64_t{0}, p[t][1].numel() / 2}) {
        const double h = 1e-6;
        TensorList plus = detach_all(p), minus = detach_all(p);
        plus[t] = p[t].clone();
        minus[t] = p[t].clone();
        plus[t][1].view({-1})[k] += h;
        minus[t][1].view({-1})[k] -= h;
        const double fd = (batch->loss(plus, 0)[1].item<double>() - batch->loss(minus, 0)[1].item<double>()) / (2 * h);
        INFO(act << " tensor " << t << " coordinate " << k);
        CHECK(grads[t][1].reshape({-1})[k].item<double>() == Approx(fd).margin(1e-7));
      }
    }
  }
}

TEST_CASE("MLP problems are paired and batched evaluation equals one-by-one") {
  test::TempDir dir;
  write_synthetic(dir.path(), 300);
  MlpTask task(synthetic_options(dir.path()));
  const auto batch = task.sample(Split::kValidation, 5, 0, 4, at::kCPU);
  auto& mlp = dynamic_cast<MlpBatch&>(*batch);
  // Minibatches: without replacement within a pass (60 validation images, batch 16: 3 batches per pass).
  std::set<int64_t> seen;
  for (int64_t t = 0; t < 3; ++t) {
    const at::Tensor idx = mlp.minibatch_indices(t)[0];
    for (int64_t i = 0; i < idx.numel(); ++i) seen.insert(idx[i].item<int64_t>());
  }
  CHECK(seen.size() == 48);
  CHECK_FALSE(at::equal(mlp.minibatch_indices(0)[0], mlp.minibatch_indices(0)[1]));
  CHECK_FALSE(at::equal(mlp.minibatch_indices(0)[0], mlp.minibatch_indices(3)[0]));  // fresh order next pass

  const TensorList p = batch->initial_params();
  for (int64_t step : {int64_t{0}, int64_t{4}}) {
    auto [lb, gb] = loss_and_grads(*batch, p, step);
    for (int64_t i = 0; i < 4; ++i) {
      const auto one = task.sample(Split::kValidation, 5, i, 1, at::kCPU);
      const TensorList p1 = one->initial_params();
      for (std::size_t t = 0; t < p.size(); ++t) CHECK(at::equal(p1[t][0], p[t][i]));
      CHECK(at::equal(dynamic_cast<MlpBatch&>(*one).minibatch_indices(step)[0], mlp.minibatch_indices(step)[i]));
      auto [l1, g1] = loss_and_grads(*one, p1, step);
      CHECK(std::abs(l1[0].item<double>() - lb[i].item<double>()) < 1e-12);
      for (std::size_t t = 0; t < p.size(); ++t) CHECK(test::max_abs_diff(g1[t][0], gb[t][i]) < 1e-12);
    }
  }
}

TEST_CASE("the MLP task on the 8x8 digits: 64 inputs, batched losses") {
  const auto dir = test::data_dir() / "digits";
  if (!test::have_data(dir / "digits.csv.gz")) return;
  const tasks::MlpTask task(tasks::MlpOptions::from_map({{"dataset", "digits"}, {"data_dir", dir.string()},
                                                         {"batch_size", "64"}, {"hidden", "32"}}));
  CHECK(task.options().at("num_params") == std::to_string((64 + 1) * 32 + (32 + 1) * 10));
  CHECK(task.options().at("data_images") == "1797");
  const auto batch = task.sample(tasks::Split::kTest, 0, 0, 3, c10::Device(c10::kCPU));
  const at::Tensor loss = batch->loss(batch->initial_params(), 0);
  REQUIRE(loss.sizes() == at::IntArrayRef({3}));
  // Ten classes at initialisation: the cross-entropy is near log 10.
  CHECK(loss.mean().item<double>() == Approx(std::log(10.0)).margin(0.3));
}
