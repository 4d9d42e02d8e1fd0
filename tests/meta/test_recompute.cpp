#include "support/catch.hpp"

#include <torch/csrc/autograd/autograd.h>

#include "hamlet/learned/registry.hpp"
#include "hamlet/meta/meta_train.hpp"
#include "hamlet/meta/recompute.hpp"
#include "hamlet/tasks/quadratic.hpp"
#include "meta_fixtures.hpp"
#include "support/test_support.hpp"

using namespace hamlet;

namespace {

struct Window {
  TensorList params_after;  // θ after the window (values)
  TensorList meta_grads;    // ∂(Σ losses)/∂φ
};

// Runs `warmup` detached steps (so the carried state is non-zero), then a window of `steps` differentiable steps
// and back-propagates the summed loss into the weights, like one meta-step of meta_train.
Window run_window(learned::LearnedOptimizer& opt, const tasks::ProblemBatch& batch, bool recompute, int64_t warmup,
                  int64_t steps) {
  TensorList params = batch.initial_params();
  optim::OptimizerState state = opt.init(params);
  opt.set_trainable(false);
  for (int64_t t = 0; t < warmup; ++t) {
    TensorList theta = params;
    for (auto& p : theta) p = p.detach().requires_grad_(true);
    const at::Tensor f = batch.loss(theta, t);
    const TensorList g = detach_all(torch::autograd::grad({f.sum()}, theta));
    at::NoGradGuard no_grad;
    auto r = opt.update(detach_all(theta), g, f.detach(), state);
    params = detach_all(r.params);
    state = r.state;
  }
  opt.set_trainable(true);
  const TensorList weights = opt.weights();
  at::Tensor acc;
  for (int64_t t = warmup; t < warmup + steps; ++t) {
    TensorList theta = params;
    for (auto& p : theta) {
      if (!p.requires_grad()) p = p.detach().requires_grad_(true);
    }
    const at::Tensor f = batch.loss(theta, t);
    acc = acc.defined() ? acc + f.mean() : f.mean();
    const TensorList g = detach_all(torch::autograd::grad({f.sum()}, theta, {}, /*retain_graph=*/true));
    auto r = recompute ? meta::recomputed_update(opt, theta, g, f.detach(), state)
                       : opt.update(theta, g, f.detach(), state);
    params = r.params;
    state = r.state;
  }
  acc = acc + batch.loss(params, warmup + steps).mean();
  Window w;
  w.params_after = detach_all(params);
  w.meta_grads = torch::autograd::grad({acc}, weights, {}, false, false, /*allow_unused=*/true);
  // A weight outside the graph (docs/methods.md §1.7) may come back undefined on one path and as zeros on the other.
  for (std::size_t i = 0; i < weights.size(); ++i) {
    if (!w.meta_grads[i].defined()) w.meta_grads[i] = at::zeros_like(weights[i]);
  }
  // The weights are still the very tensors the graph was built from (the re-run swapped them back).
  const TensorList after = opt.weights();
  for (std::size_t i = 0; i < weights.size(); ++i) CHECK(after[i].is_same(weights[i]));
  opt.set_trainable(false);
  return w;
}

}  // namespace

TEST_CASE("recomputed steps give the stored-graph meta-gradients of every learned optimizer") {
  tasks::QuadraticOptions qo;
  qo.dtype = "float64";
  const tasks::QuadraticTask task(qo);
  const auto batch = task.sample(tasks::Split::kTrain, 3, 0, 4, c10::Device("cpu"));
  const std::vector<std::pair<std::string, OptionMap>> cases = {
      {"phnn-paper", {{"dtype", "float64"}, {"out_mul", "0.01"}}},
      {"phnn-paper", {{"dtype", "float64"}, {"out_mul", "0.01"}, {"preprocess", "true"}, {"norm", "false"}}},
      {"phnn", {{"dtype", "float64"}}},
      {"phnn", {{"dtype", "float64"}, {"mass", "constant"}, {"preprocess", "true"}}},
      {"lstm", {{"dtype", "float64"}, {"out_mul", "0.1"}}},
  };
  for (const auto& [name, options] : cases) {
    INFO(name << " " << format_options(options));
    auto opt = learned::make_learned(name, options);
    const Window stored = run_window(*opt, *batch, false, 3, 5);
    const Window recomputed = run_window(*opt, *batch, true, 3, 5);
    for (std::size_t i = 0; i < stored.params_after.size(); ++i) {
      CHECK(at::equal(stored.params_after[i], recomputed.params_after[i]));
    }
    REQUIRE(stored.meta_grads.size() == recomputed.meta_grads.size());
    double scale = 0, worst = 0;
    int64_t nonzero = 0;
    for (std::size_t i = 0; i < stored.meta_grads.size(); ++i) {
      const auto& a = stored.meta_grads[i];
      const auto& b = recomputed.meta_grads[i];
      scale = std::max(scale, a.abs().max().item<double>());
      worst = std::max(worst, test::max_abs_diff(a, b));
      nonzero += a.ne(0).sum().item<int64_t>();
    }
    CHECK(nonzero > 0);
    CHECK(worst <= 1e-10 * std::max(scale, 1.0));
  }
}

TEST_CASE("meta-training with recomputation follows the same path as with stored graphs") {
  tasks::QuadraticOptions qo;
  qo.dtype = "float64";
  const tasks::QuadraticTask task(qo);
  meta::MetaTrainOptions o = test::small_meta_options();
  o.validation.problems = 2;
  // Windows of 10 steps run as checkpointed stretches of 4, 4 and 2 steps, windows of 7 as 3, 3 and 1 (with the
  // window loss "dm", a term after the last stretch); with second derivatives the optimizee gradients are inputs
  // that need gradients too.
  for (const std::string unroll : {"10", "7"}) {
  o.schedule = meta::ScheduleOptions::from_map({{"epochs", "1"}, {"trajectories", "2"}, {"horizon", "20"},
                                                {"unroll", unroll}, {"batch", "2"},
                                                {"window_loss", unroll == "7" ? "dm" : "optml"}});
  for (const bool second : {false, true}) {
  for (const std::string name : {"phnn", "lstm", "mlp-lopt"}) {
    INFO(name << " unroll " << unroll << (second ? " with second derivatives" : ""));
    auto a = learned::make_learned(name, {{"dtype", "float64"}});
    auto b = learned::make_learned(name, {{"dtype", "float64"}});
    o.estimator.bptt.second_derivatives = second;
    meta::meta_train(*a, task, o);
    meta::MetaTrainOptions orc = o;
    orc.estimator.bptt.recompute = true;
    CHECK(orc.to_map().at("recompute") == "true");
    meta::meta_train(*b, task, orc);
    const TensorList wa = a->weights(), wb = b->weights();
    for (std::size_t i = 0; i < wa.size(); ++i) CHECK(test::max_abs_diff(wa[i], wb[i]) <= 1e-9);
  }
  }
  }
}
