// The hand-designed optimizers' fused per-coordinate path (src/optim/fused.hpp) against their tensor rules, which
// are what autograd sees: the same optimizer run on plain tensors (fused) and on tensors that require grad under
// grad mode (tensor rule) must give the same parameters and buffers, and the fused path must not depend on the
// number of threads.
#include "support/catch.hpp"

#include <ATen/Parallel.h>

#include "hamlet/core/seed.hpp"
#include "hamlet/optim/registry.hpp"
#include "support/test_support.hpp"

using namespace hamlet;

namespace {

struct Run {
  TensorList params;
  optim::OptimizerState state;
};

// `steps` updates from `start` with gradients drawn from a fixed generator; `reference` makes every tensor require
// grad under grad mode, which sends the update down the tensor rule.
Run run_steps(const optim::Optimizer& opt, const TensorList& start, int64_t steps, bool reference) {
  at::Generator gen = make_generator(7);
  Run run;
  for (const auto& p : start) run.params.push_back(reference ? p.clone().requires_grad_(true) : p.clone());
  run.state = opt.init(run.params);
  for (int64_t t = 0; t < steps; ++t) {
    TensorList grads;
    for (const auto& p : start) grads.push_back(at::randn(p.sizes(), gen, p.options()));
    auto r = opt.update(run.params, grads, at::Tensor(), run.state);
    run.params = r.params;
    run.state = std::move(r.state);
  }
  for (auto& p : run.params) p = p.detach();
  return run;
}

TensorList random_params(at::ScalarType dtype, std::initializer_list<at::IntArrayRef> shapes) {
  at::Generator gen = make_generator(3);
  TensorList out;
  for (const auto& shape : shapes) out.push_back(at::randn(shape, gen, at::TensorOptions().dtype(dtype)));
  return out;
}

// Largest difference relative to max(1, |reference|) over parameters and every slot.
double worst_difference(const Run& a, const Run& b) {
  double worst = 0;
  const auto compare = [&](const at::Tensor& x, const at::Tensor& y) {
    const at::Tensor scale = y.abs().clamp_min(1.0);
    worst = std::max(worst, ((x.to(at::kDouble) - y.to(at::kDouble)).abs() / scale.to(at::kDouble)).max().item<double>());
  };
  for (std::size_t i = 0; i < a.params.size(); ++i) compare(a.params[i], b.params[i]);
  for (const auto& [name, tensors] : a.state.slots) {
    const TensorList& other = b.state.slots.at(name);
    for (std::size_t i = 0; i < tensors.size(); ++i) compare(tensors[i].detach(), other[i].detach());
  }
  return worst;
}

const std::vector<std::pair<std::string, OptionMap>> kOptimizers = {
    {"sgd", {{"lr", "0.1"}}},
    {"momentum", {{"lr", "0.05"}, {"momentum", "0.9"}}},
    {"nag", {{"lr", "0.05"}, {"momentum", "0.8"}}},
    {"rmsprop", {{"lr", "0.01"}, {"alpha", "0.9"}, {"eps", "1e-6"}}},
    {"adam", {{"lr", "0.01"}, {"beta1", "0.8"}, {"beta2", "0.95"}, {"eps", "1e-6"}}},
};

}  // namespace

TEST_CASE("hand-designed fused steps equal their tensor rules over six steps") {
  for (const auto& [name, options] : kOptimizers) {
    CAPTURE(name);
    const auto opt = optim::make_optimizer(name, options);
    // A [B, ...] matrix, a vector and a per-problem scalar: every shape a task hands over.
    const TensorList start64 = random_params(at::kDouble, {{3, 5, 7}, {3, 11}, {3}});
    CHECK(worst_difference(run_steps(*opt, start64, 6, false), run_steps(*opt, start64, 6, true)) < 1e-12);
    const TensorList start32 = random_params(at::kFloat, {{3, 5, 7}, {3, 11}, {3}});
    CHECK(worst_difference(run_steps(*opt, start32, 6, false), run_steps(*opt, start32, 6, true)) < 2e-6);
  }
}

TEST_CASE("hand-designed fused steps give the same bits on one and two threads") {
  const int before = at::get_num_threads();
  // 2 x 70,000 coordinates: several of the fused loop's 16,384-coordinate chunks per problem.
  const TensorList start = random_params(at::kFloat, {{2, 70000}, {2, 13}});
  for (const auto& [name, options] : kOptimizers) {
    CAPTURE(name);
    const auto opt = optim::make_optimizer(name, options);
    at::set_num_threads(1);
    const Run one = run_steps(*opt, start, 3, false);
    at::set_num_threads(2);
    const Run two = run_steps(*opt, start, 3, false);
    at::set_num_threads(before);
    for (std::size_t i = 0; i < one.params.size(); ++i) CHECK(at::equal(one.params[i], two.params[i]));
    for (const auto& [slot, tensors] : one.state.slots) {
      for (std::size_t i = 0; i < tensors.size(); ++i) CHECK(at::equal(tensors[i], two.state.slots.at(slot)[i]));
    }
  }
}
