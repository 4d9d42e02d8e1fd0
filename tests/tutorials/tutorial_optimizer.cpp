// Tutorial 1 of docs/extending.md: a new hand-designed optimizer, Lion (Chen et al. 2023, "Symbolic Discovery of
// Optimization Algorithms"), added from outside hamlet. The code between the TUTORIAL markers is what the tutorial
// shows; built into hamlet it would be include/hamlet/optim/lion.hpp + src/optim/lion.cpp and one line in
// src/optim/registry.cpp.
#include "support/catch.hpp"

#include <cmath>

#include "hamlet/eval/evaluate.hpp"
#include "hamlet/optim/elementwise.hpp"
#include "hamlet/optim/registry.hpp"
#include "hamlet/tasks/quadratic.hpp"

using namespace hamlet;

namespace {

// TUTORIAL: options -------------------------------------------------------------------------------------------
// Lion:  c = β1·m + (1−β1)·g;   θ ← θ − lr·(sign(c) + wd·θ);   m ← β2·m + (1−β2)·g.
struct LionOptions {
  double lr = 1e-4;
  double beta1 = 0.9;
  double beta2 = 0.99;
  double weight_decay = 0.0;
  HAMLET_OPTIONS(LionOptions);
};

const OptionSpec<LionOptions>& LionOptions::spec() {
  static const auto s = OptionSpec<LionOptions>("lion")
                            .add("lr", &LionOptions::lr, "learning rate", checks::positive)
                            .add("beta1", &LionOptions::beta1, "interpolation of the update direction",
                                 checks::in_range(0, 1))
                            .add("beta2", &LionOptions::beta2, "decay of the momentum", checks::in_range(0, 1))
                            .add("weight_decay", &LionOptions::weight_decay, "decoupled weight decay",
                                 checks::non_negative);
  return s;
}

// TUTORIAL: the optimizer -------------------------------------------------------------------------------------
// Lion treats every coordinate alike, so it is an ElementwiseOptimizer: it names its per-parameter buffer ("m",
// zeros at the start) and writes the rule for one parameter tensor [B, ...]; init() and update() come from the
// base, which also validates the options and takes the name "lion" from the spec. The rule returns new tensors and
// never writes into its inputs, so meta-training could differentiate through it and the evaluator can batch B
// problems in one tensor program.
class Lion final : public optim::ElementwiseOptimizer<LionOptions> {
 public:
  explicit Lion(LionOptions options = {}) : ElementwiseOptimizer(std::move(options), {"m"}) {}

 protected:
  at::Tensor step(const at::Tensor& theta, const at::Tensor& g, TensorList& m) const override {
    const at::Tensor c = options_.beta1 * m[0] + (1 - options_.beta1) * g;
    m[0] = options_.beta2 * m[0] + (1 - options_.beta2) * g;
    return theta - options_.lr * (c.sign() + options_.weight_decay * theta);
  }
};

// TUTORIAL: registration (built in, this is the line in src/optim/registry.cpp: {"lion", entry<Lion, LionOptions>()})
void register_lion() {
  static const bool done = [] {
    optim::register_optimizer("lion", buildable<optim::OptimizerPtr, Lion, LionOptions>());
    return true;
  }();
  (void)done;
}

}  // namespace

TEST_CASE("tutorial optimizer: Lion's known answer under a constant gradient, against a scalar loop") {
  register_lion();
  const auto lion = optim::make_optimizer("lion", {{"lr", "0.1"}, {"weight_decay", "0.5"}});
  // θ0 = (1, −2), g = (0.3, −0.4) at every step; the reference is the same recursion in plain doubles.
  TensorList theta = {at::tensor({1.0, -2.0}, at::kDouble)};
  const TensorList g = {at::tensor({0.3, -0.4}, at::kDouble)};
  optim::OptimizerState state = lion->init(theta);
  double ref_theta[2] = {1.0, -2.0}, ref_m[2] = {0.0, 0.0};
  const double gd[2] = {0.3, -0.4};
  for (int step = 0; step < 5; ++step) {
    const optim::StepResult r = lion->update(theta, g, at::Tensor(), state);
    theta = r.params;
    state = r.state;
    for (int k = 0; k < 2; ++k) {
      const double c = 0.9 * ref_m[k] + 0.1 * gd[k];
      ref_theta[k] -= 0.1 * ((c > 0) - (c < 0) + 0.5 * ref_theta[k]);
      ref_m[k] = 0.99 * ref_m[k] + 0.01 * gd[k];
    }
    CHECK(theta[0][0].item<double>() == Approx(ref_theta[0]).epsilon(1e-15));
    CHECK(theta[0][1].item<double>() == Approx(ref_theta[1]).epsilon(1e-15));
  }
  // Step 1 by hand: c = 0.1·g, sign(c) = (1, −1), θ1 = θ0 − 0.1·((1, −1) + 0.5·θ0) = (0.85, −1.8).
  const optim::StepResult first = lion->update({at::tensor({1.0, -2.0}, at::kDouble)}, g, at::Tensor(),
                                               lion->init(g));
  CHECK(first.params[0][0].item<double>() == Approx(0.85).epsilon(1e-15));
  CHECK(first.params[0][1].item<double>() == Approx(-1.8).epsilon(1e-15));
}

TEST_CASE("tutorial optimizer: Lion is a registered optimizer the evaluator runs on paired problems") {
  register_lion();
  CHECK_THROWS_WITH(optim::make_optimizer("lion", {{"lr", "-1"}}), Catch::Contains("lion.lr"));
  CHECK_THROWS_WITH(optim::make_optimizer("lion", {{"momentum", "0.9"}}), Catch::Contains("valid options: lr"));
  tasks::QuadraticTask task;
  eval::EvaluateOptions o;
  o.problems = 8;
  o.steps = 50;
  o.progress = false;
  const eval::Trajectory t = eval::evaluate(task, *optim::make_optimizer("lion", {{"lr", "0.05"}}), o);
  // The loss falls on average: sign steps of 0.05 walk towards the least-squares solution.
  CHECK(t.final_loss.mean().item<double>() < 0.5 * t.loss.select(1, 0).mean().item<double>());
}
