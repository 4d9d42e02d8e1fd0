// Tutorial 2 of docs/extending.md: a new task, logistic regression on synthetic data, added from outside hamlet.
// The code between the TUTORIAL markers is what the tutorial shows; built into hamlet it would be
// include/hamlet/tasks/logistic.hpp + src/tasks/logistic.cpp and one line in src/tasks/registry.cpp.
#include "support/catch.hpp"

#include <torch/csrc/autograd/autograd.h>

#include "hamlet/core/seed.hpp"
#include "hamlet/eval/evaluate.hpp"
#include "hamlet/learned/registry.hpp"
#include "hamlet/meta/meta_train.hpp"
#include "hamlet/optim/registry.hpp"
#include "hamlet/tasks/registry.hpp"

using namespace hamlet;

namespace {

// TUTORIAL: options -------------------------------------------------------------------------------------------
struct LogisticOptions {
  int64_t features = 5;   // d
  int64_t examples = 64;  // n per problem
  double noise = 0.5;     // label noise: y = [x·w* + noise·ε > 0]
  HAMLET_OPTIONS(LogisticOptions);
};

const OptionSpec<LogisticOptions>& LogisticOptions::spec() {
  static const auto s = OptionSpec<LogisticOptions>("logistic")
                            .add("features", &LogisticOptions::features, "input dimension d", checks::positive)
                            .add("examples", &LogisticOptions::examples, "examples per problem", checks::positive)
                            .add("noise", &LogisticOptions::noise, "standard deviation of the label noise",
                                 checks::non_negative);
  return s;
}

// TUTORIAL: B problems as one tensor program ------------------------------------------------------------------
// Parameters w [B, d] and b [B]; data X [B, n, d], labels y [B, n] in {0, 1}. The loss is the mean binary
// cross-entropy of the logits X·w + b, per problem: [B].
class LogisticBatch final : public tasks::ProblemBatch {
 public:
  LogisticBatch(at::Tensor x, at::Tensor y) : x_(std::move(x)), y_(std::move(y)) {}
  int64_t size() const override { return x_.size(0); }
  TensorList initial_params() const override {
    return {at::zeros({x_.size(0), x_.size(2)}, x_.options()), at::zeros({x_.size(0)}, x_.options())};
  }
  at::Tensor loss(const TensorList& params, int64_t /*step*/) const override {
    const at::Tensor logits = at::bmm(x_, params[0].unsqueeze(2)).squeeze(2) + params[1].unsqueeze(1);
    // log(1 + e^z) − y·z, the numerically stable form of the cross-entropy.
    return (at::softplus(logits) - y_ * logits).mean(1);
  }
  std::vector<std::string> param_names() const override { return {"w", "b"}; }

 private:
  at::Tensor x_, y_;
};

// TUTORIAL: the task ------------------------------------------------------------------------------------------
// Problem i of (split, seed) draws everything from its own generator (tasks::problem_seed), so it is the same
// problem in any batch: every optimizer sees the same problems (paired comparisons).
class LogisticTask final : public tasks::Task {
 public:
  explicit LogisticTask(LogisticOptions options) : options_(options) { options_.validate(); }
  std::string name() const override { return "logistic"; }
  OptionMap options() const override { return options_.to_map(); }
  std::unique_ptr<tasks::ProblemBatch> sample(tasks::Split split, uint64_t seed, int64_t first, int64_t count,
                                              c10::Device device) const override {
    std::vector<at::Tensor> xs, ys;
    const auto f64 = at::TensorOptions().dtype(at::kDouble);
    for (int64_t i = first; i < first + count; ++i) {
      at::Generator gen = make_generator(tasks::problem_seed(split, seed, i));
      const at::Tensor x = at::randn({options_.examples, options_.features}, gen, f64);
      const at::Tensor w_true = at::randn({options_.features}, gen, f64);
      const at::Tensor noise = options_.noise * at::randn({options_.examples}, gen, f64);
      xs.push_back(x);
      ys.push_back((at::mv(x, w_true) + noise > 0).to(at::kDouble));
    }
    return std::make_unique<LogisticBatch>(at::stack(xs).to(device, at::kFloat), at::stack(ys).to(device, at::kFloat));
  }

 private:
  LogisticOptions options_;
};

// TUTORIAL: registration (built in, this is the line in src/tasks/registry.cpp: {"logistic", entry<...>()})
void register_logistic() {
  static const bool done = [] {
    tasks::register_task("logistic", buildable<tasks::TaskPtr, LogisticTask, LogisticOptions>());
    return true;
  }();
  (void)done;
}

}  // namespace

TEST_CASE("tutorial task: batched loss and gradient equal an unbatched autograd reference, problem by problem") {
  register_logistic();
  const tasks::TaskPtr task = tasks::make_task("logistic", {{"features", "3"}, {"examples", "16"}});
  const auto batch = task->sample(tasks::Split::kTest, 7, 0, 4, c10::Device("cpu"));
  TensorList params;
  at::Generator gen = make_generator(1);
  params.push_back(at::randn({4, 3}, gen, at::kFloat).requires_grad_(true));
  params.push_back(at::randn({4}, gen, at::kFloat).requires_grad_(true));
  const at::Tensor f = batch->loss(params, 0);
  const TensorList g = torch::autograd::grad({f.sum()}, params);
  for (int64_t i = 0; i < 4; ++i) {
    // Pairing: problem i drawn alone is problem i of the batch.
    const auto alone = task->sample(tasks::Split::kTest, 7, i, 1, c10::Device("cpu"));
    const TensorList one = {params[0][i].detach().unsqueeze(0), params[1][i].detach().unsqueeze(0)};
    CHECK(alone->loss(one, 0).item<double>() == Approx(f[i].item<double>()).epsilon(1e-6));
  }
  // An independent reference for values and gradients: problem 0 rebuilt from its generator as sample() draws it,
  // its loss LibTorch's binary_cross_entropy_with_logits on one unbatched problem.
  at::Tensor w = params[0][0].detach().clone().requires_grad_(true);
  at::Tensor b = params[1][0].detach().clone().requires_grad_(true);
  at::Generator pg = make_generator(tasks::problem_seed(tasks::Split::kTest, 7, 0));
  const auto f64 = at::TensorOptions().dtype(at::kDouble);
  const at::Tensor x = at::randn({16, 3}, pg, f64).to(at::kFloat);
  const at::Tensor w_true = at::randn({3}, pg, f64);
  const at::Tensor noise = 0.5 * at::randn({16}, pg, f64);
  const at::Tensor y = (at::mv(x.to(at::kDouble), w_true) + noise > 0).to(at::kFloat);
  const at::Tensor ref = at::binary_cross_entropy_with_logits(at::mv(x, w) + b, y);
  const TensorList ref_g = torch::autograd::grad({ref}, {w, b});
  CHECK(ref.item<double>() == Approx(f[0].item<double>()).epsilon(1e-6));
  CHECK(at::allclose(ref_g[0], g[0][0], 1e-5, 1e-6));
  CHECK(ref_g[1].item<double>() == Approx(g[1][0].item<double>()).epsilon(1e-5));
}

TEST_CASE("tutorial task: Adam solves it and a learned optimizer meta-trains on it") {
  register_logistic();
  const tasks::TaskPtr task = tasks::make_task("logistic", {});
  eval::EvaluateOptions o;
  o.problems = 8;
  o.steps = 100;
  o.progress = false;
  const eval::Trajectory adam = eval::evaluate(*task, *optim::make_optimizer("adam", {{"lr", "0.1"}}), o);
  CHECK(adam.final_loss.mean().item<double>() < 0.6 * std::log(2.0));  // log 2 at w = 0, b = 0
  auto lopt = learned::make_learned("mlp-lopt", {});
  // Options parse from text as on the command line (--epochs=2 ...), checked by their spec.
  meta::MetaTrainOptions m;
  m.schedule = meta::ScheduleOptions::from_map({{"epochs", "2"}, {"trajectories", "2"}, {"horizon", "20"}, {"unroll", "10"}});
  m.validation.problems = 4;
  m.progress = false;
  const meta::MetaTrainResult r = meta::meta_train(*lopt, *task, m);
  CHECK(r.curve.size() == 2);
  CHECK(std::isfinite(r.best_score));
  CHECK(r.best_score <= r.initial_score);
}
