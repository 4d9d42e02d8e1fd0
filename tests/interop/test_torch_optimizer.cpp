// hamlet::interop::TorchOptimizer against three independent references: hamlet's own functional evaluator
// (eval::evaluate) on the same problem, LibTorch's torch::optim for the classic optimizers, and an uninterrupted
// run for save/load. The heavy LibTorch frontend (nn, optim) is included only here and in the adapter.
#include "support/catch.hpp"

#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/functional/loss.h>
#include <torch/optim/adam.h>
#include <torch/optim/rmsprop.h>
#include <torch/optim/sgd.h>
#include <torch/serialize.h>
#include <torch/utils.h>

#include <filesystem>
#include <fstream>

#include "hamlet/core/error.hpp"
#include "hamlet/core/seed.hpp"
#include "hamlet/eval/evaluate.hpp"
#include "hamlet/interop/learned_files.hpp"
#include "hamlet/interop/torch_optimizer.hpp"
#include "hamlet/learned/registry.hpp"
#include "hamlet/optim/registry.hpp"
#include "hamlet/tasks/mlp.hpp"
#include "learned/learned_fixtures.hpp"
#include "support/test_support.hpp"

using namespace hamlet;
using interop::TorchOptimizer;
using interop::TorchOptimizerOptions;

namespace {

constexpr int64_t kIn = 4, kHidden = 8, kOut = 2, kExamples = 16;

// A fixed regression problem: inputs X [16, 4], targets Y [16, 2] (float64).
struct Regression {
  at::Tensor x, y;
  Regression() {
    at::Generator gen = make_generator(5);
    const auto opts = at::TensorOptions().dtype(at::kDouble);
    x = at::randn({kExamples, kIn}, gen, opts);
    y = at::randn({kExamples, kOut}, gen, opts);
  }
};

torch::nn::Sequential make_model(uint64_t seed) {
  torch::manual_seed(seed);
  torch::nn::Sequential model(torch::nn::Linear(kIn, kHidden), torch::nn::Tanh(), torch::nn::Linear(kHidden, kOut));
  model->to(at::kDouble);
  return model;
}

// The same network written functionally over one problem's parameters [1, ...] (w0, b0, w1, b1).
at::Tensor functional_loss(const TensorList& p, const Regression& data) {
  const at::Tensor h = at::tanh(at::linear(data.x, p[0].squeeze(0), p[1].squeeze(0)));
  return at::mse_loss(at::linear(h, p[2].squeeze(0), p[3].squeeze(0)), data.y).reshape({1});
}

// The regression problem as a hamlet Task, so eval::evaluate can run it: problem 0 starts at the module's
// initial parameters.
class RegressionBatch final : public tasks::ProblemBatch {
 public:
  RegressionBatch(TensorList params0, Regression data) : params0_(std::move(params0)), data_(std::move(data)) {}
  int64_t size() const override { return 1; }
  TensorList initial_params() const override { return params0_; }
  at::Tensor loss(const TensorList& params, int64_t) const override { return functional_loss(params, data_); }
  std::vector<std::string> param_names() const override { return {"w0", "b0", "w1", "b1"}; }

 private:
  TensorList params0_;
  Regression data_;
};

class RegressionTask final : public tasks::Task {
 public:
  explicit RegressionTask(TensorList params0) : params0_(std::move(params0)) {}
  std::string name() const override { return "regression"; }
  OptionMap options() const override { return {}; }
  std::unique_ptr<tasks::ProblemBatch> sample(tasks::Split, uint64_t, int64_t first, int64_t count,
                                              c10::Device) const override {
    REQUIRE((first == 0 && count == 1));
    return std::make_unique<RegressionBatch>(params0_, Regression());
  }

 private:
  TensorList params0_;
};

TensorList problem_params(const torch::nn::Sequential& model) {
  TensorList out;
  for (const auto& p : model->parameters()) out.push_back(p.detach().clone().unsqueeze(0));
  return out;
}

// Trains `model` with `opt` for `steps` steps on the regression problem, returning the loss before each step.
std::vector<double> train(torch::nn::Sequential& model, torch::optim::Optimizer& opt, const Regression& data,
                          int64_t steps) {
  std::vector<double> losses;
  for (int64_t t = 0; t < steps; ++t) {
    auto closure = [&] {
      opt.zero_grad();
      at::Tensor loss = at::mse_loss(model->forward(data.x), data.y);
      loss.backward();
      return loss;
    };
    losses.push_back(opt.step(closure).item<double>());
  }
  return losses;
}

double max_param_diff(const torch::nn::Sequential& a, const torch::nn::Sequential& b) {
  double worst = 0;
  const auto pa = a->parameters(), pb = b->parameters();
  for (std::size_t i = 0; i < pa.size(); ++i) worst = std::max(worst, test::max_abs_diff(pa[i], pb[i]));
  return worst;
}

bool params_equal(const torch::nn::Sequential& a, const torch::nn::Sequential& b) {
  const auto pa = a->parameters(), pb = b->parameters();
  for (std::size_t i = 0; i < pa.size(); ++i) {
    if (!at::equal(pa[i], pb[i])) return false;
  }
  return true;
}

// Learning rates at which every hand-designed optimizer makes progress on the regression without diverging.
OptionMap small_lr(const std::string& name) {
  if (name == "sgd" || name == "symplectic-euler" || name == "momentum" || name == "nag") return {{"lr", "0.05"}};
  if (name == "ecdsep") return {{"lr", "0.1"}};
  return {{"lr", "0.01"}};
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("TorchOptimizer reproduces hamlet evaluate for every hand-designed optimizer") {
  const Regression data;
  for (const std::string& name : optim::hand_designed_names()) {
    INFO("optimizer " << name);
    auto model = make_model(1);
    const RegressionTask task(problem_params(model));
    const auto algorithm = optim::make_optimizer(name, small_lr(name));
    eval::EvaluateOptions eo;
    eo.problems = 1;
    eo.steps = 50;
    eo.progress = false;
    const eval::Trajectory reference = eval::evaluate(task, *algorithm, eo);

    TorchOptimizer opt(model->parameters(), TorchOptimizerOptions(name, small_lr(name)));
    const std::vector<double> losses = train(model, opt, data, 50);
    double worst = 0;
    for (int64_t t = 0; t < 50; ++t) worst = std::max(worst, std::abs(losses[t] - reference.loss[0][t].item<double>()));
    double final_loss;
    {
      at::NoGradGuard no_grad;
      final_loss = at::mse_loss(model->forward(data.x), data.y).item<double>();
    }
    CHECK(worst <= 1e-12);
    CHECK(std::abs(final_loss - reference.final_loss[0].item<double>()) <= 1e-12);
    // It trained: the loss fell well below its start.
    CHECK(final_loss < 0.9 * losses.front());
    CHECK(opt.hamlet_state().step == 50);
  }
}

TEST_CASE("TorchOptimizer follows torch::optim to 1e-6 for sgd, momentum, nag, adam, rmsprop") {
  const Regression data;
  auto ours_model = make_model(2), theirs_model = make_model(2);
  std::unique_ptr<torch::optim::Optimizer> theirs;
  std::string name;
  double lr = 0;
  SECTION("sgd") {
    name = "sgd", lr = 0.05;
    theirs = std::make_unique<torch::optim::SGD>(theirs_model->parameters(), torch::optim::SGDOptions(lr));
  }
  SECTION("momentum") {
    name = "momentum", lr = 0.05;
    theirs = std::make_unique<torch::optim::SGD>(theirs_model->parameters(), torch::optim::SGDOptions(lr).momentum(0.9));
  }
  SECTION("nag") {
    name = "nag", lr = 0.05;
    theirs = std::make_unique<torch::optim::SGD>(theirs_model->parameters(),
                                                 torch::optim::SGDOptions(lr).momentum(0.9).nesterov(true));
  }
  SECTION("adam") {
    name = "adam", lr = 0.01;
    theirs = std::make_unique<torch::optim::Adam>(theirs_model->parameters(), torch::optim::AdamOptions(lr));
  }
  SECTION("rmsprop") {
    name = "rmsprop", lr = 0.01;
    theirs = std::make_unique<torch::optim::RMSprop>(theirs_model->parameters(), torch::optim::RMSpropOptions(lr));
  }
  INFO("optimizer " << name);
  TorchOptimizer ours(ours_model->parameters(), TorchOptimizerOptions(name, {{"lr", format_number(lr)}}));
  const auto start = problem_params(ours_model);
  train(ours_model, ours, data, 50);
  train(theirs_model, *theirs, data, 50);
  CHECK(max_param_diff(ours_model, theirs_model) <= 1e-6);
  CHECK(test::max_abs_diff(ours_model->parameters()[0].unsqueeze(0), start[0]) > 1e-3);
}

TEST_CASE("a learned optimizer loaded from a weight file gives hamlet evaluate's updates on an MLP problem") {
  const auto mnist = test::data_dir() / "mnist";
  if (!std::filesystem::exists(mnist / "train-images-idx3-ubyte")) {
    WARN("no prepared MNIST under " << test::data_dir() << "; run scripts/fetch_data.sh");
    return;
  }
  test::TempDir dir;
  const tasks::MlpTask task(tasks::MlpOptions::from_map({{"data_dir", mnist.string()}}));
  constexpr int64_t kSteps = 8;
  for (const std::string& name : learned::learned_names()) {
    INFO("learned optimizer " << name);
    const std::string path = (dir / (name + ".h5")).string();
    // Log-sign preprocessing where the optimizer has it (optimizers that normalise their own features refuse it).
    OptionMap options{{"seed", "3"}};
    if (test::accepts_preprocess(name)) options["preprocess"] = "true";
    interop::save_weights(path, *learned::make_learned(name, options));

    eval::EvaluateOptions eo;
    eo.problems = 1;
    eo.steps = kSteps;
    eo.progress = false;
    const eval::Trajectory reference = eval::evaluate(task, *interop::make_learned(name, {{"weights", path}}), eo);

    // The same problem 0 of the test split, trained through the adapter on plain [out, in] / [out] tensors.
    const auto batch = task.sample(tasks::Split::kTest, 0, 0, 1, c10::Device(c10::kCPU));
    std::vector<at::Tensor> params;
    for (const auto& p : batch->initial_params()) params.push_back(p.squeeze(0).clone().requires_grad_(true));
    TorchOptimizer opt(params, TorchOptimizerOptions::from_weights(path));
    CHECK(opt.algorithm().name() == name);
    const auto batched = [&] {
      TensorList out;
      for (const auto& p : params) out.push_back(p.unsqueeze(0));
      return out;
    };
    for (int64_t t = 0; t < kSteps; ++t) {
      opt.zero_grad();
      const at::Tensor loss = batch->loss(batched(), t);
      loss.sum().backward();
      TensorList before;
      for (const auto& p : params) before.push_back(p.detach().clone().unsqueeze(0));
      opt.step();
      TensorList delta;
      for (std::size_t i = 0; i < params.size(); ++i) delta.push_back(params[i].detach().unsqueeze(0) - before[i]);
      CHECK(loss.item<double>() == reference.loss[0][t].item<double>());
      // Equal parameters (the losses above are bitwise equal); the norm of θ' − θ rounds differently from the
      // evaluator's for the tiny steps of mlp-lopt, hence a relative 1e-6.
      CHECK(per_problem_norm(delta).item<double>() == Approx(reference.update_norm[0][t].item<double>()).epsilon(1e-6));
    }
    at::NoGradGuard no_grad;
    CHECK(batch->loss(batched(), kSteps).item<double>() == reference.final_loss[0].item<double>());
  }
}

TEST_CASE("TorchOptimizer save -> load -> continue equals an uninterrupted run bitwise") {
  const Regression data;
  test::TempDir dir;
  const std::string weights = (dir / "lstm.h5").string();
  interop::save_weights(weights, *learned::make_learned("lstm", {{"seed", "1"}, {"out_mul", "0.01"}}));
  std::vector<TorchOptimizerOptions> cases = {TorchOptimizerOptions("adam", {{"lr", "0.01"}}),
                                              TorchOptimizerOptions("ecdsep", {{"lr", "0.01"}}),
                                              TorchOptimizerOptions::from_weights(weights)};
  for (const auto& options : cases) {
    INFO("optimizer " << options.name());
    const std::string archive = (dir / (options.name() + ".pt")).string();
    const std::string model_file = (dir / (options.name() + "_model.pt")).string();
    auto uninterrupted = make_model(3);
    TorchOptimizer a(uninterrupted->parameters(), options);
    train(uninterrupted, a, data, 10);
    torch::save(a, archive);
    torch::save(uninterrupted, model_file);
    train(uninterrupted, a, data, 10);

    auto resumed = make_model(4);  // other initial values, replaced by the saved ones
    torch::load(resumed, model_file);
    // The archive brings the state and the options (a learned optimizer's weight file among them), not the choice
    // of optimizer: resuming into another one is refused.
    TorchOptimizer wrong(resumed->parameters(), TorchOptimizerOptions("sgd"));
    CHECK_THROWS_WITH(torch::load(wrong, archive), Catch::Contains("holds the state of optimizer '" + options.name() +
                                                                   "', this TorchOptimizer runs 'sgd'"));
    CHECK(wrong.algorithm().name() == "sgd");
    TorchOptimizer b(resumed->parameters(), TorchOptimizerOptions(options.name()));
    torch::load(b, archive);
    CHECK(b.algorithm().name() == options.name());
    CHECK(b.hamlet_state().step == 10);
    train(resumed, b, data, 10);
    CHECK(params_equal(uninterrupted, resumed));
    CHECK(b.hamlet_state().step == 20);
  }
}

TEST_CASE("TorchOptimizer refuses an archive saved for other parameters and stays as it was") {
  const Regression data;
  test::TempDir dir;
  {
    auto model = make_model(3);
    TorchOptimizer a(model->parameters(), TorchOptimizerOptions("adam"));
    train(model, a, data, 2);
    const std::string archive = (dir / "adam.pt").string();
    torch::save(a, archive);
    torch::nn::Sequential other(torch::nn::Linear(kIn, 3), torch::nn::Tanh(), torch::nn::Linear(3, kOut));
    TorchOptimizer b(other->parameters(), TorchOptimizerOptions("adam", {{"lr", "0.5"}}));
    const std::string message = error_of([&] { torch::load(b, archive); });
    CHECK_THAT(message, Catch::Contains("parameter 0 has shape [8, 4] in the archive and [3, 4] here"));
    CHECK(b.algorithm().learning_rate() == 0.5);
    // A file that is not a torch archive: a sentence naming it, not torch's stack trace.
    const std::string garbage = (dir / "garbage.pt").string();
    { std::ofstream(garbage) << "not an archive"; }
    const std::string garbled = error_of([&] { b.load_from_file(garbage); });
    CHECK_THAT(garbled, Catch::StartsWith(garbage + " is not a readable torch archive"));
    CHECK_THAT(garbled, !Catch::Contains("Exception raised from"));
  }
}

TEST_CASE("TorchOptimizer errors and documented behaviour") {
  const Regression data;
  test::TempDir dir;
  const std::string phnn = (dir / "phnn.h5").string();
  interop::save_weights(phnn, *learned::make_learned("phnn", {{"seed", "0"}}));

  SECTION("a weight file for another architecture names the file") {
    auto model = make_model(0);
    const std::string message =
        error_of([&] { (void)TorchOptimizer(model->parameters(), TorchOptimizerOptions("lstm", {{"weights", phnn}})); });
    CHECK_THAT(message, Catch::Contains(phnn));
    CHECK_THAT(message, Catch::Contains("phnn"));
    const std::string missing = (dir / "missing.h5").string();
    CHECK_THAT(error_of([&] { TorchOptimizerOptions::from_weights(missing); }), Catch::Contains(missing));
  }
  SECTION("an unknown optimizer or option fails at construction") {
    auto model = make_model(0);
    CHECK_THAT(error_of([&] { (void)TorchOptimizer(model->parameters(), TorchOptimizerOptions("adamw")); }),
               Catch::Contains("unknown optimizer 'adamw'"));
    CHECK_THAT(error_of([&] { (void)TorchOptimizer(model->parameters(), TorchOptimizerOptions("adam", {{"lr", "-1"}})); }),
               Catch::Contains("lr"));
  }
  SECTION("a non-finite gradient is an error naming the parameter, and nothing changes") {
    auto model = make_model(0);
    TorchOptimizer opt(model->parameters(), TorchOptimizerOptions("adam"));
    const auto before = problem_params(model);
    at::mse_loss(model->forward(data.x), data.y).backward();
    model->parameters()[2].mutable_grad()[0][1] = std::numeric_limits<double>::quiet_NaN();
    CHECK_THAT(error_of([&] { opt.step(); }), Catch::Contains("parameter 2 (shape [2, 8]): the gradient holds NaN"));
    const auto after = problem_params(model);
    for (std::size_t i = 0; i < before.size(); ++i) CHECK(at::equal(before[i], after[i]));
  }
  SECTION("parameters without a gradient: a whole group is skipped, part of a group is an error") {
    auto model = make_model(0);
    TorchOptimizer opt(model->parameters(), TorchOptimizerOptions("sgd", {{"lr", "0.1"}}));
    const auto before = problem_params(model);
    // No backward has run yet: every gradient is undefined.
    opt.step();
    const auto after = problem_params(model);
    for (std::size_t i = 0; i < before.size(); ++i) CHECK(at::equal(before[i], after[i]));
    model->parameters()[1].mutable_grad() = at::ones({kHidden}, at::kDouble);
    CHECK_THAT(error_of([&] { opt.step(); }), Catch::Contains("parameters 0, 2, 3 have no gradient"));
  }
  SECTION("ecdsep reads the loss: step() without a closure is an error") {
    auto model = make_model(0);
    TorchOptimizer opt(model->parameters(), TorchOptimizerOptions("ecdsep"));
    at::mse_loss(model->forward(data.x), data.y).backward();
    CHECK_THAT(error_of([&] { opt.step(); }), Catch::Contains("call step(closure)"));
  }
  SECTION("set_lr (what LR schedulers call) changes the step size and keeps the state") {
    auto ours_model = make_model(0), theirs_model = make_model(0);
    TorchOptimizer ours(ours_model->parameters(), TorchOptimizerOptions("momentum", {{"lr", "0.05"}}));
    torch::optim::SGD theirs(theirs_model->parameters(), torch::optim::SGDOptions(0.05).momentum(0.9));
    CHECK(ours.param_groups()[0].options().get_lr() == 0.05);
    train(ours_model, ours, data, 5);
    train(theirs_model, theirs, data, 5);
    ours.param_groups()[0].options().set_lr(0.02);
    theirs.param_groups()[0].options().set_lr(0.02);
    train(ours_model, ours, data, 5);
    train(theirs_model, theirs, data, 5);
    CHECK(ours.param_groups()[0].options().get_lr() == 0.02);
    CHECK(max_param_diff(ours_model, theirs_model) <= 1e-6);
  }
  SECTION("the learned optimizer's step size is its out_mul") {
    auto model = make_model(0);
    TorchOptimizer opt(model->parameters(), TorchOptimizerOptions::from_weights(phnn, {{"out_mul", "0.25"}}));
    CHECK(opt.param_groups()[0].options().get_lr() == 0.25);
  }
}

TEST_CASE("last_diagnostics: the energy of symplectic's first step, from the model's own gradient") {
  // AdvancedSymplectic (docs/methods.md §7.2) reports h = ½(‖m‖² + ‖g‖²) summed over the tensors, with m after the
  // update; from m = 0 the first step has m = (1 − β)·g, so h = ½((1 − β)² + 1)·‖g‖².
  const Regression data;
  auto model = make_model(0);
  const double beta = 0.9;
  TorchOptimizer opt(model->parameters(), TorchOptimizerOptions("symplectic", {{"lr", "0.01"}, {"beta", "0.9"}}));
  at::mse_loss(model->forward(data.x), data.y).backward();
  double g_sq = 0;
  for (const auto& p : model->parameters()) g_sq += p.grad().pow(2).sum().item<double>();
  opt.step();
  const double expected = 0.5 * ((1 - beta) * (1 - beta) + 1) * g_sq;
  CHECK(opt.last_diagnostics().at("energy").item<double>() == Approx(expected).epsilon(1e-12));
  CHECK_THROWS_AS(opt.last_diagnostics(1), Error);
}
