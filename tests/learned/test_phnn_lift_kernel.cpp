// phnn-lift's fused evaluation kernel (include/hamlet/learned/phnn_lift_kernel.hpp) against the tensor expressions
// of PhnnLift::update, the reference: every option that changes the arithmetic, any per-problem shape, float64 and
// float32, and which path an update takes.
#include <ATen/Parallel.h>
#include <torch/csrc/autograd/autograd.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "hamlet/core/seed.hpp"
#include "hamlet/learned/phnn_lift.hpp"
#include "hamlet/learned/phnn_lift_kernel.hpp"
#include "learned_fixtures.hpp"
#include "support/catch.hpp"
#include "support/test_support.hpp"

using namespace hamlet;
using namespace hamlet::learned;

namespace {

PhnnLiftOptions with(PhnnLiftOptions o, at::ScalarType dtype, const std::string& kernel) {
  o.dtype = dtype == at::kDouble ? "float64" : "float32";
  o.kernel = kernel;
  return o;
}

// Three problems of four parameters whose per-problem shapes are [5, 7], [7], [] (one scalar per problem) and
// [2, 3, 4]: the kernel flattens each to [B, N] whatever its rank.
TensorList parameters(at::Generator& gen, const at::TensorOptions& opts) {
  return {at::randn({3, 5, 7}, gen, opts), at::randn({3, 7}, gen, opts), at::randn({3}, gen, opts),
          at::randn({3, 2, 3, 4}, gen, opts)};
}

// Largest difference between the fused and the tensor path over five consecutive steps, each path continuing from
// its own outputs (so that a difference would grow along the trajectory): parameters, both state slots and the
// four diagnostics. `relative`: max_rel_diff (float32), else max_abs_diff. The weights are the initial ones plus
// 0.5·N(0, 1) (log_rho, the zero output layer and log_step included), so that every term of the net matters.
double fused_vs_tensor(const PhnnLiftOptions& o, at::ScalarType dtype, bool relative) {
  PhnnLift fused(with(o, dtype, "fused")), tensor(with(o, dtype, "tensor"));
  at::Generator gen = make_generator(31);
  const TensorList weights = test::perturbed(fused.weights(), gen, 0.5);
  fused.set_weights(weights);
  tensor.set_weights(weights);
  const auto opts = at::TensorOptions().dtype(dtype);
  TensorList pf = parameters(gen, opts), pt = pf;
  optim::OptimizerState sf = fused.init(pf), st = tensor.init(pt);
  const auto diff = [&](const at::Tensor& a, const at::Tensor& b) {
    REQUIRE(a.sizes() == b.sizes());
    REQUIRE(a.scalar_type() == b.scalar_type());
    return relative ? test::max_rel_diff(a, b) : test::max_abs_diff(a, b);
  };
  double worst = 0;
  for (int step = 0; step < 5; ++step) {
    // Gradients of scales 1, 0.1, 0.01 and 0.001 per tensor, tied to each path's own parameters.
    TensorList gf, gt;
    for (std::size_t i = 0; i < pf.size(); ++i) {
      const at::Tensor noise = at::randn(pf[i].sizes(), gen, opts) * std::pow(10.0, -static_cast<double>(i));
      gf.push_back(noise + 0.3 * pf[i]);
      gt.push_back(noise + 0.3 * pt[i]);
    }
    const auto rf = fused.update(pf, gf, at::Tensor(), sf), rt = tensor.update(pt, gt, at::Tensor(), st);
    CHECK(rf.state.step == rt.state.step);
    for (std::size_t i = 0; i < pf.size(); ++i) worst = std::max(worst, diff(rf.params[i], rt.params[i]));
    REQUIRE(rf.state.slots.size() == rt.state.slots.size());
    for (const auto& [name, slot] : rt.state.slots) {
      for (std::size_t i = 0; i < slot.size(); ++i) worst = std::max(worst, diff(rf.state.slots.at(name)[i], slot[i]));
    }
    REQUIRE(rf.diagnostics.size() == 4);
    for (const auto& [name, value] : rt.diagnostics) {
      REQUIRE(value.sizes() == at::IntArrayRef({3}));
      worst = std::max(worst, diff(rf.diagnostics.at(name), value));
    }
    pf = rf.params;
    pt = rt.params;
    sf = rf.state;
    st = rt.state;
  }
  return worst;
}

struct Variant {
  std::string name;
  std::function<void(PhnnLiftOptions&)> set;
};

const std::vector<Variant>& variants() {
  static const std::vector<Variant> v = {
      {"defaults", [](PhnnLiftOptions&) {}},
      {"k = 1",
       [](PhnnLiftOptions& o) {
         o.k = 1;
         o.decays = "0.9";
       }},
      {"k = 4",
       [](PhnnLiftOptions& o) {
         o.k = 4;
         o.decays = "0.5:0.9:0.99:0.999";
       }},
      {"relativistic", [](PhnnLiftOptions& o) {
         o.kinetic = "relativistic";
         o.speed = 0.3;
       }},
      {"normalise_output false", [](PhnnLiftOptions& o) { o.normalise_output = false; }},
      {"mass constant", [](PhnnLiftOptions& o) { o.mass = "constant"; }},
      {"time features", [](PhnnLiftOptions& o) { o.time_features = true; }},
      {"weight decay", [](PhnnLiftOptions& o) { o.weight_decay = 0.2; }},
      {"everything at once",
       [](PhnnLiftOptions& o) {
         o.k = 2;
         o.decays = "0.8:0.95";
         o.hidden = 5;
         o.kinetic = "relativistic";
         o.mass = "constant";
         o.time_features = true;
         o.weight_decay = 0.05;
         o.out_mul = 0.1;
       }},
  };
  return v;
}

}  // namespace

TEST_CASE("phnn-lift kernel: the fused update equals the tensor path, float64 at 1e-12") {
  for (const auto& v : variants()) {
    INFO(v.name);
    PhnnLiftOptions o;
    v.set(o);
    CHECK(fused_vs_tensor(o, at::kDouble, /*relative=*/false) < 1e-12);
  }
}

TEST_CASE("phnn-lift kernel: the fused update equals the tensor path, float32 to rounding") {
  for (const auto& v : variants()) {
    INFO(v.name);
    PhnnLiftOptions o;
    v.set(o);
    CHECK(fused_vs_tensor(o, at::kFloat, /*relative=*/true) < 1e-5);
  }
}

TEST_CASE("phnn-lift kernel: which path an update takes") {
  const auto f64 = at::TensorOptions().dtype(at::kDouble);
  PhnnLiftOptions o = with({}, at::kDouble, "fused");
  o.time_features = true;
  PhnnLift opt(o);
  at::Generator gen = make_generator(32);
  opt.set_weights(test::perturbed(opt.weights(), gen, 0.5));
  const TensorList params = parameters(gen, f64);
  TensorList grads;
  for (const auto& p : params) grads.push_back(at::randn(p.sizes(), gen, f64));
  optim::OptimizerState state = opt.init(params);
  state.step = 7;
  state.slots.at("p")[0].normal_(0.0, 0.1, gen);
  REQUIRE(phnn_lift_fused_applies(params, grads, state, opt.weights(), f64));

  SECTION("kernel=fused evaluates with the kernel: bitwise its result") {
    const auto direct = phnn_lift_update_fused(o, opt.weights(), params, grads, state, f64);
    const auto r = opt.update(params, grads, at::Tensor(), state);
    CHECK(r.state.step == 8);
    for (std::size_t i = 0; i < params.size(); ++i) {
      CHECK(at::equal(r.params[i], direct.params[i]));
      CHECK(at::equal(r.state.slots.at("p")[i], direct.state.slots.at("p")[i]));
      CHECK(at::equal(r.state.slots.at("v")[i], direct.state.slots.at("v")[i]));
    }
    for (const auto& [name, value] : direct.diagnostics) CHECK(at::equal(r.diagnostics.at(name), value));
  }
  SECTION("trainable weights take the tensor path: a differentiable result equal to kernel=tensor") {
    PhnnLift tensor(with(o, at::kDouble, "tensor"));
    tensor.set_weights(opt.weights());
    const auto expected = tensor.update(params, grads, at::Tensor(), state);
    opt.set_trainable(true);
    CHECK_FALSE(phnn_lift_fused_applies(params, grads, state, opt.weights(), f64));
    const auto r = opt.update(params, grads, at::Tensor(), state);
    at::Tensor objective = at::zeros({}, f64);
    for (std::size_t i = 0; i < params.size(); ++i) {
      REQUIRE(r.params[i].requires_grad());
      CHECK(test::max_abs_diff(r.params[i].detach(), expected.params[i]) < 1e-12);
      objective = objective + r.params[i].square().sum();
    }
    const TensorList meta = torch::autograd::grad({objective}, opt.weights());
    for (const auto& g : meta) CHECK(g.abs().sum().item<double>() > 0.0);
    opt.set_trainable(false);
  }
  SECTION("parameters that require grad take the tensor path too") {
    TensorList leaves;
    for (const auto& p : params) leaves.push_back(p.clone().requires_grad_(true));
    CHECK_FALSE(phnn_lift_fused_applies(leaves, grads, state, opt.weights(), f64));
    const auto r = opt.update(leaves, grads, at::Tensor(), state);
    const TensorList d = torch::autograd::grad({r.params[0].sum()}, {leaves[0]});
    CHECK(test::max_abs_diff(d[0], at::ones_like(d[0])) == 0.0);
  }
  SECTION("where the kernel does not apply") {
    CHECK_FALSE(phnn_lift_fused_applies(params, grads, state, opt.weights(), f64.dtype(at::kHalf)));
    CHECK_FALSE(phnn_lift_fused_applies({params[0].to(at::kFloat)}, {grads[0]}, state, opt.weights(), f64));
    CHECK_FALSE(phnn_lift_fused_applies({at::zeros({}, f64)}, {at::zeros({}, f64)}, state, opt.weights(), f64));
    CHECK_FALSE(phnn_lift_fused_applies({params[0]}, {grads[0].clone().requires_grad_(true)}, state, opt.weights(),
                                        f64));
    optim::OptimizerState traced = state;
    traced.slots.at("v")[1] = traced.slots.at("v")[1].clone().requires_grad_(true);
    CHECK_FALSE(phnn_lift_fused_applies(params, grads, traced, opt.weights(), f64));
    optim::OptimizerState missing = state;
    missing.slots.erase("v");
    CHECK_THROWS_WITH(phnn_lift_update_fused(o, opt.weights(), params, grads, missing, f64),
                      Catch::Contains("no slot 'v'"));
  }
  SECTION("float32 parameters with float64 weights take the tensor path (new parameters keep their dtype)") {
    TensorList p32, g32;
    for (std::size_t i = 0; i < params.size(); ++i) {
      p32.push_back(params[i].to(at::kFloat));
      g32.push_back(grads[i].to(at::kFloat));
    }
    PhnnLift tensor(with(o, at::kDouble, "tensor"));
    tensor.set_weights(opt.weights());
    const auto r = opt.update(p32, g32, at::Tensor(), opt.init(p32));
    const auto expected = tensor.update(p32, g32, at::Tensor(), tensor.init(p32));
    for (std::size_t i = 0; i < params.size(); ++i) {
      CHECK(r.params[i].scalar_type() == at::kFloat);
      CHECK(r.state.slots.at("p")[i].scalar_type() == at::kDouble);
      CHECK(test::max_abs_diff(r.params[i], expected.params[i]) == 0.0);
    }
  }
}

TEST_CASE("phnn-lift kernel: slices of several chunks equal the tensor path and give the same bits on 1 and 2 threads") {
  // 2 problems x 40,000 coordinates: three of the kernel's 16,384-coordinate chunks per slice, the last one partial.
  const auto run = [](const std::string& kernel, at::ScalarType dtype, int threads) {
    const int before = at::get_num_threads();
    at::set_num_threads(threads);
    PhnnLift opt(with(PhnnLiftOptions(), dtype, kernel));
    at::Generator gen = make_generator(5);
    opt.set_weights(test::perturbed(opt.weights(), gen, 0.5));
    const auto opts = at::TensorOptions().dtype(dtype);
    TensorList params = {at::randn({2, 40000}, gen, opts), at::randn({2, 9}, gen, opts)};
    optim::OptimizerState state = opt.init(params);
    optim::StepResult r;
    for (int step = 0; step < 3; ++step) {
      TensorList grads;
      for (const auto& p : params) grads.push_back(at::randn(p.sizes(), gen, opts) + 0.3 * p);
      r = opt.update(params, grads, at::Tensor(), state);
      params = r.params;
      state = r.state;
    }
    at::set_num_threads(before);
    return r;
  };
  const auto fused = run("fused", at::kDouble, 1), tensor = run("tensor", at::kDouble, 1);
  for (std::size_t i = 0; i < fused.params.size(); ++i) CHECK(test::max_abs_diff(fused.params[i], tensor.params[i]) < 1e-12);
  for (const auto& [name, value] : tensor.diagnostics) CHECK(test::max_rel_diff(fused.diagnostics.at(name), value) < 1e-12);
  const auto one = run("fused", at::kFloat, 1), two = run("fused", at::kFloat, 2);
  for (std::size_t i = 0; i < one.params.size(); ++i) CHECK(at::equal(one.params[i], two.params[i]));
  for (const auto& [name, slot] : one.state.slots) {
    for (std::size_t i = 0; i < slot.size(); ++i) CHECK(at::equal(slot[i], two.state.slots.at(name)[i]));
  }
  for (const auto& [name, value] : one.diagnostics) CHECK(at::equal(value, two.diagnostics.at(name)));
}

TEST_CASE("phnn-lift: nominal flops per coordinate for the benchmark's flop floor") {
  CHECK(PhnnLift().flops_per_coordinate() == 273);
  PhnnLiftOptions wide;
  wide.k = 1;
  wide.decays = "0.9";
  wide.hidden = 16;
  CHECK(PhnnLift(wide).flops_per_coordinate() == 2 * 16 * 3 + 2 * 16 * 2 + 2 * 16 + 25 + 6 + 28);
}
