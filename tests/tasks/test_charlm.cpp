#include "support/catch.hpp"

#include <torch/csrc/autograd/autograd.h>
#include <torch/nn/functional/loss.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/rnn.h>
#include <torch/optim/adam.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>

#include "hamlet/data/char_corpus.hpp"
#include "hamlet/tasks/charlm.hpp"
#include "hamlet/tasks/registry.hpp"
#include "support/test_support.hpp"
#include "task_fixtures.hpp"

using namespace hamlet;
using namespace hamlet::tasks;
using Catch::Contains;

namespace {

// A small English corpus in the format fetch_data.sh writes (entries ending with a "%" line), ~6,000 characters.
void write_corpus(const std::filesystem::path& dir) {
  const std::vector<std::string> entries{
      "The quick brown fox jumps over the lazy dog.\n\t\t-- a typist",
      "A journey of a thousand miles begins with a single step.",
      "It is a truth universally acknowledged, that a single man in possession\nof a good fortune, "
      "must be in want of a wife.",
      "Never put off till tomorrow what you can do the day after tomorrow."};
  std::ofstream out(dir / "fortunes.txt", std::ios::binary);
  for (int k = 0; k < 20; ++k) {
    for (const auto& e : entries) out << e << "\n%\n";
  }
}

CharLmOptions options_for(const std::filesystem::path& dir, OptionMap extra = {}) {
  extra["data_dir"] = dir.string();
  if (!extra.count("dtype")) extra["dtype"] = "float64";
  return CharLmOptions::from_map(extra);
}

using test::loss_and_grads;

// Problem i of a batch as LibTorch modules (Embedding, GRU, Linear) holding copies of its parameters.
struct Reference {
  torch::nn::Embedding embedding{nullptr};
  torch::nn::GRU gru{nullptr};
  torch::nn::Linear out{nullptr};

  Reference(const TensorList& p, int64_t i) {
    const int64_t vocab = p[0].size(1), h = p[0].size(2);
    embedding = torch::nn::Embedding(vocab, h);
    gru = torch::nn::GRU(torch::nn::GRUOptions(h, h).batch_first(true));
    out = torch::nn::Linear(h, vocab);
    embedding->to(at::kDouble);
    gru->to(at::kDouble);
    out->to(at::kDouble);
    torch::NoGradGuard no_grad;
    embedding->weight.copy_(p[0][i]);
    gru->named_parameters()["weight_ih_l0"].copy_(p[1][i]);
    gru->named_parameters()["weight_hh_l0"].copy_(p[2][i]);
    gru->named_parameters()["bias_ih_l0"].copy_(p[3][i]);
    gru->named_parameters()["bias_hh_l0"].copy_(p[4][i]);
    out->weight.copy_(p[5][i]);
    out->bias.copy_(p[6][i]);
  }
  // Mean next-character cross-entropy over windows [M, T + 1].
  at::Tensor loss(const at::Tensor& windows) {
    const int64_t t = windows.size(1) - 1;
    const at::Tensor hs = std::get<0>(gru->forward(embedding->forward(windows.narrow(1, 0, t))));
    const at::Tensor logits = out->forward(hs);
    return torch::nn::functional::cross_entropy(logits.reshape({-1, logits.size(2)}),
                                                windows.narrow(1, 1, t).reshape({-1}));
  }
  // Gradients in the task's order: embedding, w_ih, w_hh, b_ih, b_hh, w_out, b_out.
  TensorList grads(const at::Tensor& loss) {
    auto g = gru->named_parameters();
    return torch::autograd::grad({loss}, {embedding->weight, g["weight_ih_l0"], g["weight_hh_l0"], g["bias_ih_l0"],
                                          g["bias_hh_l0"], out->weight, out->bias});
  }
};

}  // namespace

TEST_CASE("charlm: shapes, parameter count, initialisation and known answers of the loss") {
  test::TempDir dir;
  write_corpus(dir.path());
  const CharLmTask task(options_for(dir.path()));
  CHECK(task.num_params() == 12706);  // 98·32 + 2·3·32·32 + 2·96 + 98·32 + 98
  CHECK(task.options().at("num_params") == "12706");
  CHECK(task.options().at("vocabulary") == "98");
  const auto batch = task.sample(Split::kTest, 0, 0, 3, at::kCPU);
  const TensorList p = batch->initial_params();
  REQUIRE(p.size() == 7);
  const std::vector<std::vector<int64_t>> shapes{{3, 98, 32}, {3, 96, 32}, {3, 96, 32}, {3, 96},
                                                 {3, 96},     {3, 98, 32}, {3, 98}};
  for (std::size_t k = 0; k < p.size(); ++k) CHECK(p[k].sizes().vec() == shapes[k]);
  CHECK((batch->param_names() ==
         std::vector<std::string>{"embedding", "w_ih", "w_hh", "b_ih", "b_hh", "w_out", "b_out"}));
  CHECK(per_problem_numel(p) == task.num_params());
  // LibTorch's defaults: N(0, 1) embedding, U(−1/√32, 1/√32) elsewhere.
  CHECK(p[0].std().item<double>() == Approx(1.0).margin(0.05));
  for (std::size_t k = 1; k < p.size(); ++k) {
    CHECK(p[k].abs().max().item<double>() <= 1.0 / std::sqrt(32.0));
    CHECK(p[k].abs().max().item<double>() > 0.9 / std::sqrt(32.0));
  }

  // Known answer 1: all parameters zero give uniform logits, loss ln 98 for every problem and step.
  TensorList zero;
  for (const auto& t : p) zero.push_back(at::zeros_like(t));
  CHECK(test::max_abs_diff(batch->loss(zero, 5), at::full({3}, std::log(98.0), at::kDouble)) < 1e-12);
  // Known answer 2: only the output bias c_v = 0.01·v set; the loss is logsumexp(c) − 0.01·(mean target token),
  // the targets being the window's characters 1..T, so this checks that each character predicts the next.
  TensorList bias_only = zero;
  bias_only[6] = at::arange(98, at::kDouble).mul(0.01).expand({3, 98}).clone();
  const auto& lm = dynamic_cast<const CharLmBatch&>(*batch);
  const at::Tensor targets = lm.windows(2).narrow(2, 1, 32).to(at::kDouble);
  const double lse = std::log((at::arange(98, at::kDouble) * 0.01).exp().sum().item<double>());
  const at::Tensor expected = lse - 0.01 * targets.mean({1, 2});
  CHECK(test::max_abs_diff(batch->loss(bias_only, 2), expected) < 1e-12);
  // Near ln 98 at initialisation.
  CHECK(std::abs(batch->loss(p, 0).mean().item<double>() - std::log(98.0)) < 0.3);
}

TEST_CASE("charlm: losses and gradients of a batch of 3 equal an unbatched LibTorch Embedding + GRU + Linear") {
  test::TempDir dir;
  write_corpus(dir.path());
  const CharLmTask task(options_for(dir.path(), {{"hidden", "8"}, {"context", "12"}, {"batch_size", "5"}}));
  const auto batch = task.sample(Split::kTrain, 3, 0, 3, at::kCPU);
  const auto& lm = dynamic_cast<const CharLmBatch&>(*batch);
  // Away from the initialisation, so that no gate sits at a value that hides a wrong term.
  TensorList p = batch->initial_params();
  for (std::size_t k = 0; k < p.size(); ++k) {
    p[k] = p[k] + 0.3 * at::sin(at::arange(p[k].numel(), at::kDouble) + static_cast<double>(k)).view_as(p[k]);
  }
  for (const int64_t step : {int64_t{0}, int64_t{7}}) {
    auto [loss, grads] = loss_and_grads(*batch, p, step);
    const at::Tensor windows = lm.windows(step);
    for (int64_t i = 0; i < 3; ++i) {
      Reference ref(p, i);
      const at::Tensor ref_loss = ref.loss(windows[i]);
      const TensorList ref_grads = ref.grads(ref_loss);
      INFO("step " << step << ", problem " << i);
      CHECK(std::abs(loss[i].item<double>() - ref_loss.item<double>()) < 1e-10);
      for (std::size_t k = 0; k < grads.size(); ++k) {
        INFO("tensor " << batch->param_names()[k]);
        CHECK(test::max_abs_diff(grads[k][i], ref_grads[k]) < 1e-10);
      }
    }
  }
}

TEST_CASE("charlm: problem i alone is problem i of a batch, and windows stay inside their split's part") {
  test::TempDir dir;
  write_corpus(dir.path());
  const CharLmTask task(options_for(dir.path(), {{"hidden", "6"}, {"context", "10"}, {"batch_size", "4"}}));
  const auto [train_begin, train_end] = task.part(Split::kTrain);
  const auto [val_begin, val_end] = task.part(Split::kValidation);
  const auto [test_begin, test_end] = task.part(Split::kTest);
  CHECK(train_begin == 0);
  CHECK(train_end == val_begin);
  CHECK(val_end == test_begin);
  CHECK(test_end == task.corpus().size());
  CHECK(std::abs(static_cast<double>(val_end - val_begin) / task.corpus().size() - 0.1) < 1e-3);

  const auto batch = task.sample(Split::kValidation, 5, 0, 4, at::kCPU);
  const auto& lm = dynamic_cast<const CharLmBatch&>(*batch);
  // The windows of each problem and step are drawn afresh and lie within the validation part.
  const at::Tensor s0 = lm.window_starts(0), s1 = lm.window_starts(1);
  CHECK(s0.min().item<int64_t>() >= 0);
  CHECK(s0.max().item<int64_t>() + 10 < val_end - val_begin);
  CHECK_FALSE(at::equal(s0[0], s0[1]));
  CHECK_FALSE(at::equal(s0[0], s1[0]));
  const at::Tensor expected = task.corpus().tokens.narrow(0, val_begin + s0[2][1].item<int64_t>(), 11).to(at::kLong);
  CHECK(at::equal(lm.windows(0)[2][1], expected));

  const TensorList p = batch->initial_params();
  for (const int64_t step : {int64_t{0}, int64_t{4}}) {
    auto [lb, gb] = loss_and_grads(*batch, p, step);
    for (int64_t i = 0; i < 4; ++i) {
      const auto one = task.sample(Split::kValidation, 5, i, 1, at::kCPU);
      const TensorList p1 = one->initial_params();
      for (std::size_t k = 0; k < p.size(); ++k) CHECK(at::equal(p1[k][0], p[k][i]));
      CHECK(at::equal(dynamic_cast<const CharLmBatch&>(*one).window_starts(step)[0], lm.window_starts(step)[i]));
      auto [l1, g1] = loss_and_grads(*one, p1, step);
      CHECK(std::abs(l1[0].item<double>() - lb[i].item<double>()) < 1e-12);
      for (std::size_t k = 0; k < p.size(); ++k) CHECK(test::max_abs_diff(g1[k][0], gb[k][i]) < 1e-12);
    }
  }
  // Another split or seed gives other problems.
  CHECK_FALSE(at::equal(task.sample(Split::kTest, 5, 0, 1, at::kCPU)->initial_params()[1][0], p[1][0]));
  CHECK_FALSE(at::equal(task.sample(Split::kValidation, 6, 0, 1, at::kCPU)->initial_params()[1][0], p[1][0]));
}

TEST_CASE("charlm: option errors name the field") {
  test::TempDir dir;
  write_corpus(dir.path());
  CHECK_THROWS_WITH(CharLmOptions::from_map({{"hidden", "0"}}), Contains("charlm.hidden"));
  CHECK_THROWS_WITH(CharLmOptions::from_map({{"context", "-3"}}), Contains("charlm.context"));
  CHECK_THROWS_WITH(CharLmOptions::from_map({{"batch_size", "x"}}), Contains("charlm: option 'batch_size'"));
  CHECK_THROWS_WITH(CharLmOptions::from_map({{"split", "80:20"}}),
                    Contains("charlm.split must give three proportions train:validation:test, got 2"));
  CHECK_THROWS_WITH(CharLmOptions::from_map({{"split", "80:0:20"}}), Contains("charlm.split"));
  CHECK_THROWS_WITH(CharLmOptions::from_map({{"dtype", "float16"}}), Contains("charlm.dtype"));
  CHECK_THROWS_WITH(CharLmOptions::from_map({{"width", "8"}}), Contains("width") && Contains("hidden"));
  // A part too short for one window, with the corpus at hand.
  CHECK_THROWS_WITH(CharLmTask(options_for(dir.path(), {{"split", "1000:1:1"}, {"context", "64"}})),
                    Contains("charlm.split 1000:1:1 leaves the validation part"));
  CHECK_THROWS_WITH(make_task("charlm", {{"data_dir", (dir / "nowhere").string()}}),
                    Contains("run scripts/fetch_data.sh"));
}

TEST_CASE("charlm on the fortunes corpus: Adam lowers the loss from about ln 98") {
  test::TempDir dir;
  std::filesystem::path data = test::data_dir() / "fortunes";
  if (!std::filesystem::exists(data / "fortunes.txt")) {
    WARN("no " << data << "; run scripts/fetch_data.sh (using a small stand-in corpus)");
    write_corpus(dir.path());
    data = dir.path();
  }
  const TaskPtr task = make_task("charlm", {{"data_dir", data.string()}, {"batch_size", "16"}});
  const auto batch = task->sample(Split::kTest, 0, 0, 2, at::kCPU);
  TensorList p = fresh_leaves(batch->initial_params());
  const double start = batch->loss(p, 0).mean().item<double>();
  CHECK(std::abs(start - std::log(98.0)) < 0.3);
  torch::optim::Adam adam(p, torch::optim::AdamOptions(0.01));
  double last = start;
  for (int64_t t = 0; t < 60; ++t) {
    adam.zero_grad();
    const at::Tensor loss = batch->loss(p, t).sum();
    loss.backward();
    adam.step();
    last = loss.item<double>() / 2;
  }
  // Well below uniform guessing: the model has at least learned the character frequencies.
  CHECK(last < std::log(98.0) - 1.0);
}
