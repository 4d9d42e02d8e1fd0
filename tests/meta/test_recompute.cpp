#include "support/catch.hpp"

#include <torch/csrc/autograd/autograd.h>

#include <map>

#include "hamlet/core/seed.hpp"
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


// Forwards to `inner` and records the problem count of every update(): with autograd on (the backward's re-runs) in
// `reruns`, with autograd off (warm-up steps, recomputed_update's forward) in `forwards`. `independent` is what it
// tells the recompute node.
class RecordingOptimizer final : public learned::LearnedOptimizer {
 public:
  RecordingOptimizer(learned::LearnedOptimizerPtr inner, bool independent)
      : inner_(std::move(inner)), independent_(independent) {}
  std::string name() const override { return inner_->name(); }
  OptionMap options() const override { return inner_->options(); }
  double learning_rate() const override { return inner_->learning_rate(); }
  optim::OptimizerState init(const TensorList& params) const override { return inner_->init(params); }
  optim::StepResult update(const TensorList& params, const TensorList& grads, const at::Tensor& loss,
                           const optim::OptimizerState& state) const override {
    (at::GradMode::is_enabled() ? reruns : forwards).push_back(params.front().size(0));
    return inner_->update(params, grads, loss, state);
  }
  TensorList weights() const override { return inner_->weights(); }
  std::vector<std::string> weight_names() const override { return inner_->weight_names(); }
  void set_weights(const TensorList& weights) override { inner_->set_weights(weights); }
  std::string architecture() const override { return inner_->architecture(); }
  bool updates_problems_independently() const override { return independent_; }

  mutable std::vector<int64_t> reruns, forwards;

 private:
  learned::LearnedOptimizerPtr inner_;
  bool independent_;
};

// B problems with three differently shaped tensors, W [B, 3, 4], v [B, 5], s [B], and per problem
//   f_b = ½‖W − A_b‖² + 0.05 Σ W⁴ + ½‖v − c_b‖² + ½(s − 1)² + 0.1 s Σ tanh(v)
// (random targets A, c): smooth, with curvature that changes along the trajectory and couples v and s.
struct ShapedProblems {
  at::Tensor a, c;
  explicit ShapedProblems(int64_t batch) {
    at::Generator gen = make_generator(11);
    const auto f64 = at::TensorOptions().dtype(at::kDouble);
    a = at::randn({batch, 3, 4}, gen, f64);
    c = at::randn({batch, 5}, gen, f64);
  }
  TensorList initial() const {
    const int64_t b = a.size(0);
    const auto f64 = at::TensorOptions().dtype(at::kDouble);
    return {at::zeros({b, 3, 4}, f64), at::full({b, 5}, 0.5, f64), at::full({b}, -0.5, f64)};
  }
  at::Tensor loss(const TensorList& x) const {
    const at::Tensor& w = x[0];
    const at::Tensor& v = x[1];
    const at::Tensor& s = x[2];
    return 0.5 * (w - a).square().sum({1, 2}) + 0.05 * w.pow(4).sum({1, 2}) + 0.5 * (v - c).square().sum(1) +
           0.5 * (s - 1).square() + 0.1 * s * v.tanh().sum(1);
  }
};

struct ShapedWindow {
  TensorList params_after, meta_grads;
  TensorList state_after;                          // slots, then scalars, in map order
  std::map<std::string, at::Tensor> diagnostics;  // of the last step
};

// As run_window on ShapedProblems, every differentiable step through recomputed_update with `group_coordinates`;
// with `second` the optimizee gradients keep their graph (second derivatives), so they are inputs that need
// gradients too.
ShapedWindow run_shaped_window(learned::LearnedOptimizer& opt, const ShapedProblems& problems,
                               int64_t group_coordinates, bool second) {
  TensorList params = problems.initial();
  optim::OptimizerState state = opt.init(params);
  opt.set_trainable(false);
  for (int64_t t = 0; t < 3; ++t) {
    TensorList theta = fresh_leaves(params);
    const at::Tensor f = problems.loss(theta);
    const TensorList g = detach_all(torch::autograd::grad({f.sum()}, theta));
    at::NoGradGuard no_grad;
    auto r = opt.update(detach_all(theta), g, f.detach(), state);
    params = detach_all(r.params);
    state = r.state;
  }
  opt.set_trainable(true);
  const TensorList weights = opt.weights();
  at::Tensor acc;
  ShapedWindow w;
  for (int64_t t = 0; t < 4; ++t) {
    TensorList theta = params;
    for (auto& p : theta) {
      if (!p.requires_grad()) p = p.detach().requires_grad_(true);
    }
    const at::Tensor f = problems.loss(theta);
    acc = acc.defined() ? acc + f.mean() : f.mean();
    TensorList g = torch::autograd::grad({f.sum()}, theta, {}, /*retain_graph=*/true, /*create_graph=*/second);
    if (!second) g = detach_all(g);
    auto r = meta::recomputed_update(opt, theta, g, f.detach(), state, group_coordinates);
    params = r.params;
    state = r.state;
    w.diagnostics = r.diagnostics;
  }
  acc = acc + problems.loss(params).mean();
  w.params_after = detach_all(params);
  for (const auto& [name, list] : state.slots) {
    for (const auto& x : list) w.state_after.push_back(x.detach());
  }
  for (const auto& [name, x] : state.scalars) w.state_after.push_back(x.detach());
  w.meta_grads = torch::autograd::grad({acc}, weights, {}, false, false, /*allow_unused=*/true);
  for (std::size_t i = 0; i < weights.size(); ++i) {
    if (!w.meta_grads[i].defined()) w.meta_grads[i] = at::zeros_like(weights[i]);
  }
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

TEST_CASE("recomputed steps in groups of problems give the one-group values and meta-gradients") {
  // B = 5 problems of 12 + 5 + 1 = 18 coordinates: 18 coordinates per group re-run one problem at a time, 40 two
  // at a time (2, 2 and 1: a short last group), 0 all five at once (the reference).
  constexpr int64_t kBatch = 5;
  const ShapedProblems problems(kBatch);
  const std::vector<std::pair<std::string, OptionMap>> cases = {
      {"phnn-paper", {{"dtype", "float64"}, {"out_mul", "0.01"}}},
      {"phnn", {{"dtype", "float64"}}},
      {"phnn", {{"dtype", "float64"}, {"mass", "constant"}, {"preprocess", "true"}}},
      {"phnn-features", {{"dtype", "float64"}}},
      {"phnn-lift", {{"dtype", "float64"}}},
      {"lstm", {{"dtype", "float64"}, {"out_mul", "0.1"}}},
      {"lstm", {{"dtype", "float64"}, {"out_mul", "0.1"}, {"preprocess", "true"}, {"kernel", "tensor"}}},
      {"mlp-lopt", {{"dtype", "float64"}}},
  };
  for (const auto& [name, options] : cases) {
    for (const bool second : {false, true}) {
      INFO(name << " " << format_options(options) << (second ? " with second derivatives" : ""));
      RecordingOptimizer opt(learned::make_learned(name, options), /*independent=*/true);
      REQUIRE(learned::make_learned(name, options)->updates_problems_independently());
      const ShapedWindow whole = run_shaped_window(opt, problems, 0, second);
      // 3 warm-up steps and 4 recomputed ones, each re-run once.
      CHECK(opt.forwards == std::vector<int64_t>(7, kBatch));
      CHECK(opt.reruns == std::vector<int64_t>(4, kBatch));
      for (const int64_t group : {int64_t{18}, int64_t{40}}) {
        INFO("group_coordinates " << group);
        opt.reruns.clear();
        opt.forwards.clear();
        const ShapedWindow grouped = run_shaped_window(opt, problems, group, second);
        const std::vector<int64_t> per_step = group == 18 ? std::vector<int64_t>{1, 1, 1, 1, 1}
                                                          : std::vector<int64_t>{2, 2, 1};
        std::vector<int64_t> expected, expected_forwards(3, kBatch);
        for (int k = 0; k < 4; ++k) {
          expected.insert(expected.end(), per_step.begin(), per_step.end());
          expected_forwards.insert(expected_forwards.end(), per_step.begin(), per_step.end());
        }
        CHECK(opt.reruns == expected);
        CHECK(opt.forwards == expected_forwards);
        // The forward in groups assembles the same values (each problem's rows computed alike).
        for (std::size_t i = 0; i < whole.params_after.size(); ++i) {
          CHECK(at::equal(whole.params_after[i], grouped.params_after[i]));
        }
        REQUIRE(whole.state_after.size() == grouped.state_after.size());
        for (std::size_t i = 0; i < whole.state_after.size(); ++i) {
          CHECK(at::equal(whole.state_after[i], grouped.state_after[i]));
        }
        REQUIRE(whole.diagnostics.size() == grouped.diagnostics.size());
        for (const auto& [key, value] : whole.diagnostics) {
          INFO("diagnostic " << key);
          REQUIRE(grouped.diagnostics.count(key) == 1);
          const at::Tensor& other = grouped.diagnostics.at(key);
          CHECK(value.sizes() == other.sizes());
          CHECK(test::max_abs_diff(value, other) <= 1e-12 * (1 + value.abs().max().item<double>()));
        }
        REQUIRE(whole.meta_grads.size() == grouped.meta_grads.size());
        double scale = 0, worst = 0;
        int64_t nonzero = 0;
        for (std::size_t i = 0; i < whole.meta_grads.size(); ++i) {
          scale = std::max(scale, whole.meta_grads[i].abs().max().item<double>());
          worst = std::max(worst, test::max_abs_diff(whole.meta_grads[i], grouped.meta_grads[i]));
          nonzero += whole.meta_grads[i].ne(0).sum().item<int64_t>();
        }
        CHECK(nonzero > 0);
        CHECK(worst <= 1e-10 * std::max(scale, 1.0));
      }
    }
  }
}

TEST_CASE("an optimizer that does not state independent problems is stepped and re-run whole") {
  const ShapedProblems problems(4);
  RecordingOptimizer opt(learned::make_learned("lstm", {{"dtype", "float64"}}), /*independent=*/false);
  run_shaped_window(opt, problems, 1, false);
  CHECK(opt.forwards == std::vector<int64_t>(7, 4));
  CHECK(opt.reruns == std::vector<int64_t>(4, 4));
}
