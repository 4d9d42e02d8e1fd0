#include "support/catch.hpp"

#include <torch/csrc/autograd/autograd.h>
#include <torch/nn.h>
#include <torch/optim/adam.h>

#include <cmath>

#include "hamlet/data/idx.hpp"
#include "hamlet/tasks/cnn.hpp"
#include "support/data_files.hpp"
#include "support/test_support.hpp"
#include "task_fixtures.hpp"

using namespace hamlet;
using namespace hamlet::tasks;

namespace {

// A synthetic MNIST-format dataset: n images of rows x cols random bytes, labels i % 10.
void write_synthetic(const std::filesystem::path& dir, int64_t n, int64_t rows, int64_t cols) {
  test::write_synthetic_idx(dir, n, rows, cols, 2468, "train-labels-idx1-ubyte");
}

CnnOptions synthetic_options(const std::filesystem::path& dir, OptionMap extra = {}) {
  OptionMap o{{"dataset", "idx"}, {"data_dir", dir.string()}, {"batch_size", "16"}, {"dtype", "float64"}};
  for (const auto& [k, v] : extra) o[k] = v;
  return CnnOptions::from_map(o);
}

using test::loss_and_grads;

// Problem i of a batch as a plain LibTorch model: nn::Conv2d / activation / pooling modules and an nn::Linear
// holding that problem's weights, evaluated one problem at a time.
struct Reference {
  torch::nn::Sequential net;
  std::vector<torch::nn::Conv2d> convs;
  torch::nn::Linear fc{nullptr};

  Reference(const TensorList& p, int64_t i, const std::string& activation, const std::string& pool) {
    torch::NoGradGuard no_grad;
    const std::size_t layers = p.size() / 2 - 1;
    for (std::size_t l = 0; l < layers; ++l) {
      const at::Tensor& w = p[2 * l];
      torch::nn::Conv2d conv(torch::nn::Conv2dOptions(w.size(2), w.size(1), 3).padding(1));
      conv->to(w.scalar_type());
      conv->weight.copy_(w[i]);
      conv->bias.copy_(p[2 * l + 1][i]);
      convs.push_back(conv);
      net->push_back(conv);
      if (activation == "relu") net->push_back(torch::nn::ReLU());
      if (activation == "sigmoid") net->push_back(torch::nn::Sigmoid());
      if (activation == "tanh") net->push_back(torch::nn::Tanh());
      if (activation == "elu") net->push_back(torch::nn::ELU());
      if (pool == "max") net->push_back(torch::nn::MaxPool2d(2));
      else net->push_back(torch::nn::AvgPool2d(2));
    }
    net->push_back(torch::nn::Flatten());
    const at::Tensor& w = p[2 * layers];
    fc = torch::nn::Linear(w.size(2), w.size(1));
    fc->to(w.scalar_type());
    fc->weight.copy_(w[i]);
    fc->bias.copy_(p[2 * layers + 1][i]);
    net->push_back(fc);
  }

  // Cross-entropy on images x [M, S, S] with labels y [M], and the gradients in the task's tensor order.
  std::pair<double, TensorList> loss_and_grads(const at::Tensor& x, const at::Tensor& y) {
    net->zero_grad();
    const at::Tensor loss = torch::nn::functional::cross_entropy(net->forward(x.unsqueeze(1)), y);
    loss.backward();
    TensorList grads;
    for (auto& c : convs) {
      grads.push_back(c->weight.grad().clone());
      grads.push_back(c->bias.grad().clone());
    }
    grads.push_back(fc->weight.grad().clone());
    grads.push_back(fc->bias.grad().clone());
    return {loss.item<double>(), grads};
  }
};

// The images and labels of problem i's minibatch `step`, [M, S, S] and [M].
std::pair<at::Tensor, at::Tensor> minibatch(const CnnTask& task, const CnnBatch& batch, Split split, int64_t i,
                                            int64_t step) {
  const at::Tensor& pool = split == Split::kTrain ? task.split().train : split == Split::kValidation
                                                                             ? task.split().validation
                                                                             : task.split().test;
  const at::Tensor idx = pool.index_select(0, batch.minibatch_indices(step)[i]);
  const int64_t s = task.side();
  return {task.dataset().images.index_select(0, idx).to(at::kDouble).view({-1, s, s}),
          task.dataset().labels.index_select(0, idx)};
}

}  // namespace

TEST_CASE("CNN shapes, parameter counts, initialisation bounds and side limits") {
  test::TempDir dir;
  write_synthetic(dir.path(), 200, 28, 28);
  const CnnTask task(synthetic_options(dir.path()));
  CHECK(task.side() == 28);
  CHECK(task.num_params() == 9098);  // 80 + 1,168 + (7·7·16 + 1)·10
  CHECK(task.options().at("num_params") == "9098");
  const auto batch = task.sample(Split::kTest, 0, 0, 3, at::kCPU);
  const TensorList p = batch->initial_params();
  REQUIRE(p.size() == 6);
  CHECK(p[0].sizes().vec() == std::vector<int64_t>({3, 8, 1, 3, 3}));
  CHECK(p[1].sizes().vec() == std::vector<int64_t>({3, 8}));
  CHECK(p[2].sizes().vec() == std::vector<int64_t>({3, 16, 8, 3, 3}));
  CHECK(p[3].sizes().vec() == std::vector<int64_t>({3, 16}));
  CHECK(p[4].sizes().vec() == std::vector<int64_t>({3, 10, 784}));
  CHECK(p[5].sizes().vec() == std::vector<int64_t>({3, 10}));
  CHECK((batch->param_names() == std::vector<std::string>{"conv0_w", "conv0_b", "conv1_w", "conv1_b", "fc_w", "fc_b"}));
  // Conv2d / Linear default bounds 1/√fan_in: fan_in 9, 72, 784.
  const double bounds[] = {1.0 / 3.0, 1.0 / 3.0, 1.0 / std::sqrt(72.0), 1.0 / std::sqrt(72.0), 1.0 / 28.0, 1.0 / 28.0};
  for (std::size_t t = 0; t < p.size(); ++t) {
    INFO("tensor " << t);
    CHECK(p[t].abs().max().item<double>() <= bounds[t]);
    CHECK(p[t].abs().max().item<double>() > 0.75 * bounds[t]);
  }
  CHECK(batch->loss(p, 0).sizes().vec() == std::vector<int64_t>({3}));

  // 8x8 images: 8 → 4 → 2 with padding 1; three layers reach 1x1, a fourth would not fit.
  test::TempDir small;
  write_synthetic(small.path(), 200, 8, 8);
  CHECK(CnnTask(synthetic_options(small.path())).num_params() == 80 + 1168 + (2 * 2 * 16 + 1) * 10);
  CHECK(CnnTask(synthetic_options(small.path(), {{"channels", "4:4:4"}})).num_params() ==
        40 + 148 + 148 + (4 + 1) * 10);
  CHECK_THROWS_WITH(CnnTask(synthetic_options(small.path(), {{"channels", "4:4:4:4"}})),
                    Catch::Contains("cnn.channels") && Catch::Contains("at most 3"));
}

TEST_CASE("CNN known answers: zero weights give log 10 and an identity kernel gives the pooled image") {
  test::TempDir dir;
  write_synthetic(dir.path(), 120, 8, 8);
  for (const std::string pool : {"max", "avg"}) {
    const CnnTask task(synthetic_options(dir.path(), {{"channels", "1"}, {"pool", pool}}));
    const auto batch = task.sample(Split::kTrain, 0, 0, 2, at::kCPU);
    const auto& cnn = dynamic_cast<const CnnBatch&>(*batch);
    TensorList p;
    for (const auto& t : batch->initial_params()) p.push_back(at::zeros_like(t));
    CHECK(test::max_abs_diff(batch->loss(p, 1), at::full({2}, std::log(10.0), at::kDouble)) < 1e-14);

    // Kernel: 1 at the centre, bias −0.25, relu: the map is max(x − 0.25, 0). Class 0's logit is the sum of the
    // 16 pooled values (4x4), the other nine logits are 0: loss = log(e^z + 9) − [y = 0]·z.
    p[0].select(1, 0).select(1, 0).select(1, 1).select(1, 1).fill_(1.0);
    p[1].fill_(-0.25);
    p[2].select(1, 0).fill_(1.0);
    const at::Tensor loss = batch->loss(p, 1);
    for (int64_t i = 0; i < 2; ++i) {
      const auto [x, y] = minibatch(task, cnn, Split::kTrain, i, 1);
      double expected = 0;
      for (int64_t m = 0; m < x.size(0); ++m) {
        double z = 0;
        for (int64_t r = 0; r < 8; r += 2) {
          for (int64_t c = 0; c < 8; c += 2) {
            double mx = 0, sum = 0;
            for (int64_t dr = 0; dr < 2; ++dr) {
              for (int64_t dc = 0; dc < 2; ++dc) {
                const double v = std::max(x[m][r + dr][c + dc].item<double>() - 0.25, 0.0);
                mx = std::max(mx, v);
                sum += v;
              }
            }
            z += pool == "max" ? mx : sum / 4;
          }
        }
        expected += std::log(std::exp(z) + 9.0) - (y[m].item<int64_t>() == 0 ? z : 0.0);
      }
      INFO(pool << " problem " << i);
      CHECK(loss[i].item<double>() == Approx(expected / static_cast<double>(x.size(0))).epsilon(1e-13));
    }
  }
}

TEST_CASE("CNN losses and gradients of a batch equal a per-problem nn::Conv2d / nn::Linear model") {
  struct Case {
    int64_t side;
    std::string channels, activation, pool;
  };
  for (const Case& c : {Case{8, "8:16", "relu", "max"}, Case{8, "3:5:4", "sigmoid", "avg"},
                        Case{28, "4:6", "tanh", "max"}, Case{28, "5", "elu", "avg"}}) {
    test::TempDir dir;
    write_synthetic(dir.path(), 150, c.side, c.side);
    const CnnTask task(synthetic_options(
        dir.path(), {{"channels", c.channels}, {"activation", c.activation}, {"pool", c.pool}}));
    const auto batch = task.sample(Split::kValidation, 7, 0, 3, at::kCPU);
    const auto& cnn = dynamic_cast<const CnnBatch&>(*batch);
    // Perturb θ0 so that no coordinate sits at a symmetric point (relu at 0, equal pooling candidates).
    TensorList p;
    for (const auto& t : batch->initial_params()) p.push_back(t + 0.01 * at::randn_like(t));
    for (int64_t step : {int64_t{0}, int64_t{2}}) {
      auto [loss, grads] = loss_and_grads(*batch, p, step);
      for (int64_t i = 0; i < 3; ++i) {
        Reference ref(p, i, c.activation, c.pool);
        const auto [x, y] = minibatch(task, cnn, Split::kValidation, i, step);
        const auto [ref_loss, ref_grads] = ref.loss_and_grads(x, y);
        INFO(c.side << "x" << c.side << " " << c.channels << " " << c.activation << " " << c.pool << " step " << step
                    << " problem " << i);
        CHECK(std::abs(loss[i].item<double>() - ref_loss) < 1e-10);
        REQUIRE(ref_grads.size() == grads.size());
        for (std::size_t t = 0; t < grads.size(); ++t) {
          INFO("tensor " << batch->param_names()[t]);
          CHECK(test::max_abs_diff(grads[t][i], ref_grads[t]) < 1e-10);
        }
      }
    }
  }
}

TEST_CASE("CNN problems are paired: problem i alone equals problem i of a batch") {
  test::TempDir dir;
  write_synthetic(dir.path(), 200, 28, 28);
  for (const std::string dtype : {"float64", "float32"}) {
    const CnnTask task(synthetic_options(dir.path(), {{"dtype", dtype}}));
    const double tol = dtype == "float64" ? 1e-12 : 1e-5;
    const auto batch = task.sample(Split::kTest, 3, 0, 4, at::kCPU);
    const auto& cnn = dynamic_cast<const CnnBatch&>(*batch);
    CHECK_FALSE(at::equal(cnn.minibatch_indices(0)[0], cnn.minibatch_indices(0)[1]));
    const TensorList p = batch->initial_params();
    for (int64_t step : {int64_t{0}, int64_t{5}}) {
      auto [lb, gb] = loss_and_grads(*batch, p, step);
      for (int64_t i = 0; i < 4; ++i) {
        INFO(dtype << " step " << step << " problem " << i);
        const auto one = task.sample(Split::kTest, 3, i, 1, at::kCPU);
        const TensorList p1 = one->initial_params();
        for (std::size_t t = 0; t < p.size(); ++t) CHECK(at::equal(p1[t][0], p[t][i]));
        CHECK(at::equal(dynamic_cast<const CnnBatch&>(*one).minibatch_indices(step)[0], cnn.minibatch_indices(step)[i]));
        auto [l1, g1] = loss_and_grads(*one, p1, step);
        CHECK(std::abs(l1[0].item<double>() - lb[i].item<double>()) < tol);
        for (std::size_t t = 0; t < p.size(); ++t) CHECK(test::max_rel_diff(g1[t][0], gb[t][i]) < tol);
      }
    }
  }
}

TEST_CASE("CNN option errors name the field") {
  CHECK_THROWS_WITH(CnnOptions::from_map({{"channels", "8:0"}}), Catch::Contains("cnn.channels"));
  CHECK_THROWS_WITH(CnnOptions::from_map({{"channels", ""}}), Catch::Contains("option 'channels'"));
  CHECK_THROWS_WITH(CnnOptions::from_map({{"activation", "swish"}}), Catch::Contains("cnn.activation"));
  CHECK_THROWS_WITH(CnnOptions::from_map({{"pool", "min"}}), Catch::Contains("cnn.pool"));
  CHECK_THROWS_WITH(CnnOptions::from_map({{"batch_size", "0"}}), Catch::Contains("cnn.batch_size"));
  CHECK_THROWS_WITH(CnnOptions::from_map({{"dtype", "float16"}}), Catch::Contains("cnn.dtype"));
  CHECK_THROWS_WITH(CnnOptions::from_map({{"train_fraction", "0.9"}}), Catch::Contains("cnn.train_fraction"));
  CHECK_THROWS_WITH(CnnOptions::from_map({{"channel", "8"}}), Catch::Contains("channel") && Catch::Contains("channels"));
  test::TempDir dir;
  write_synthetic(dir.path(), 50, 6, 7);
  CHECK_THROWS_WITH(CnnTask(synthetic_options(dir.path())), Catch::Contains("cnn.dataset") && Catch::Contains("42"));
}

TEST_CASE("the CNN task on the 8x8 digits: Adam lowers the loss") {
  const auto dir = test::data_dir() / "digits";
  if (!test::have_data(dir / "digits.csv.gz")) return;
  const CnnTask task(CnnOptions::from_map({{"dataset", "digits"}, {"data_dir", dir.string()}, {"batch_size", "64"}}));
  CHECK(task.side() == 8);
  CHECK(task.num_params() == 1898);
  CHECK(task.options().at("data_images") == "1797");
  const auto batch = task.sample(Split::kTest, 0, 0, 2, at::kCPU);
  TensorList params = fresh_leaves(batch->initial_params());
  torch::optim::Adam adam(params, torch::optim::AdamOptions(0.01));
  const double first = batch->loss(params, 0).mean().item<double>();
  CHECK(first == Approx(std::log(10.0)).margin(0.3));  // ten classes at initialisation
  double last = 0;
  for (int64_t t = 0; t < 60; ++t) {
    adam.zero_grad();
    const at::Tensor loss = batch->loss(params, t).sum();
    loss.backward();
    adam.step();
    if (t >= 55) last += loss.item<double>() / 10.0;  // mean over the last 5 steps and 2 problems
  }
  CHECK(last < 0.5 * first);
}
