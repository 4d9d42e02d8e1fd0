#include <ATen/Parallel.h>

#include <algorithm>
#include <vector>

#include "hamlet/core/seed.hpp"
#include "hamlet/learned/mlp_lopt.hpp"
#include "hamlet/learned/mlp_lopt_update_kernel.hpp"
#include "support/catch.hpp"
#include "support/test_support.hpp"

using namespace hamlet;
using namespace hamlet::learned;

namespace {

// An mlp-lopt whose every weight matters: random layers and biases, decay parameters away from 0, a large output
// scale so that the steps are far above the parameters' rounding.
MlpLopt make_optimizer(at::ScalarType dtype, const std::string& kernel, int64_t hidden, int64_t hidden_layers) {
  MlpLoptOptions o;
  o.dtype = dtype == at::kDouble ? "float64" : "float32";
  o.kernel = kernel;
  o.hidden = hidden;
  o.hidden_layers = hidden_layers;
  o.out_mul = 100;
  o.exp_mult = 0.3;
  MlpLopt opt(o);
  at::Generator gen = make_generator(21);
  TensorList w = opt.weights();
  const std::size_t n = w.size();
  for (std::size_t i = 0; i + 3 < n; ++i) {
    w[i] = at::randn(w[i].sizes(), gen, w[i].options()) / (w[i].dim() == 2 ? std::sqrt(double(w[i].size(0))) : 3.0);
  }
  w[n - 3] = at::tensor({0.1, -0.2, 0.05}, w[n - 3].options());
  w[n - 2] = at::tensor({-0.1}, w[n - 2].options());
  w[n - 1] = at::tensor({0.2, 0.0, -0.3}, w[n - 1].options());
  opt.set_weights(w);
  return opt;
}

// B = 3 problems: factored tensors with d1 the first axis, the second axis and a tie, one of several chunks
// (21,000 coordinates per problem), a long vector of several chunks, a short one and a per-problem scalar.
TensorList make_params(at::Generator& gen, const at::TensorOptions& opts) {
  return {at::randn({3, 5, 7}, gen, opts),   at::randn({3, 9, 4}, gen, opts),   at::randn({3, 6, 6}, gen, opts),
          at::randn({3, 300, 70}, gen, opts), at::randn({3, 20000}, gen, opts), at::randn({3, 11}, gen, opts),
          at::randn({3}, gen, opts)};
}

TensorList make_grads(const TensorList& params, at::Generator& gen, double scale) {
  TensorList grads;
  for (const auto& p : params) grads.push_back(at::randn(p.sizes(), gen, p.options()) * scale);
  return grads;
}

// max |a − b| / max |b| over a list of tensors.
double rel_to_max(const TensorList& a, const TensorList& b) {
  double diff = 0, scale = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    diff = std::max(diff, test::max_abs_diff(a[i], b[i]));
    scale = std::max(scale, b[i].abs().max().to(at::kDouble).item<double>());
  }
  return diff / scale;
}

TensorList steps_of(const TensorList& next, const TensorList& params) {
  TensorList steps;
  for (std::size_t i = 0; i < next.size(); ++i) steps.push_back(params[i] - next[i]);
  return steps;
}

}  // namespace

TEST_CASE("mlp-lopt fused update equals the tensor path over several steps (float64 1e-12, float32 rounding)") {
  for (const auto dtype : {at::kDouble, at::kFloat}) {
    for (const auto& [hidden, layers] : std::vector<std::pair<int64_t, int64_t>>{{4, 2}, {6, 1}, {3, 3}}) {
      INFO("dtype " << dtype << " hidden " << hidden << " hidden_layers " << layers);
      const auto opts = at::TensorOptions().dtype(dtype);
      const MlpLopt fused = make_optimizer(dtype, "fused", hidden, layers);
      const MlpLopt tensor = make_optimizer(dtype, "tensor", hidden, layers);
      at::Generator gen = make_generator(4);
      TensorList params = make_params(gen, opts);
      optim::OptimizerState state = tensor.init(params);
      REQUIRE(mlp_lopt_update_fused_applies(params, params, fused.weights(), fused.decays(opts), state, opts));
      double worst_params = 0, worst_steps = 0, worst_slots = 0;
      for (int step = 0; step < 4; ++step) {
        const TensorList grads = make_grads(params, gen, 0.1 * (step + 1));
        const auto a = fused.update(params, grads, at::Tensor(), state);
        const auto b = tensor.update(params, grads, at::Tensor(), state);
        REQUIRE(a.state.step == b.state.step);
        for (std::size_t i = 0; i < params.size(); ++i) {
          REQUIRE(a.params[i].sizes() == params[i].sizes());
          REQUIRE(a.params[i].scalar_type() == dtype);
          worst_params = std::max(worst_params, test::max_rel_diff(a.params[i], b.params[i]));
        }
        worst_steps = std::max(worst_steps, rel_to_max(steps_of(a.params, params), steps_of(b.params, params)));
        for (const char* slot : {"m", "v", "fac"}) {
          for (std::size_t i = 0; i < params.size(); ++i) {
            const at::Tensor &x = a.state.slots.at(slot)[i], &y = b.state.slots.at(slot)[i];
            REQUIRE(x.sizes() == y.sizes());
            worst_slots = std::max(worst_slots, rel_to_max({x}, {y}));
          }
        }
        params = b.params;  // each step from the same point
        state = b.state;
      }
      INFO("worst: params " << worst_params << ", steps " << worst_steps << ", slots " << worst_slots);
      if (dtype == at::kDouble) {
        CHECK(worst_params < 1e-12);
        CHECK(worst_steps < 1e-12);
        CHECK(worst_slots < 1e-12);
      } else {
        CHECK(worst_params < 1e-6);
        CHECK(worst_steps < 2e-5);
        CHECK(worst_slots < 2e-6);
      }
    }
  }
}

TEST_CASE("mlp-lopt fused update: MlpLopt::update takes it, and 1 and 2 threads give the same bits") {
  for (const auto dtype : {at::kDouble, at::kFloat}) {
    INFO("dtype " << dtype);
    const auto opts = at::TensorOptions().dtype(dtype);
    const MlpLopt opt = make_optimizer(dtype, "fused", 4, 2);
    at::Generator gen = make_generator(6);
    const TensorList params = make_params(gen, opts);
    const TensorList grads = make_grads(params, gen, 0.3);
    const auto s0 = opt.init(params);
    const auto s1 = opt.update(params, make_grads(params, gen, 0.2), at::Tensor(), s0).state;
    const int threads = at::get_num_threads();
    std::vector<optim::StepResult> results;
    for (int t : {1, 2}) {
      at::set_num_threads(t);
      results.push_back(opt.update(params, grads, at::Tensor(), s1));
    }
    at::set_num_threads(threads);
    // The optimizer's update is the fused kernel's, bit for bit.
    const TensorList w = opt.weights();
    const auto direct = mlp_lopt_update_fused(opt.settings(), w, opt.decays(opts), params, grads, s1, opts);
    for (std::size_t i = 0; i < params.size(); ++i) {
      CHECK(at::equal(results[0].params[i], results[1].params[i]));
      CHECK(at::equal(results[0].params[i], direct.params[i]));
      for (const char* slot : {"m", "v", "fac"}) {
        CHECK(at::equal(results[0].state.slots.at(slot)[i], results[1].state.slots.at(slot)[i]));
        CHECK(at::equal(results[0].state.slots.at(slot)[i], direct.state.slots.at(slot)[i]));
      }
    }
  }
}

TEST_CASE("mlp-lopt fused update: where it applies, and the nominal flops per coordinate") {
  const auto f64 = at::TensorOptions().dtype(at::kDouble);
  const MlpLopt opt = make_optimizer(at::kDouble, "fused", 4, 2);
  const TensorList p = {at::zeros({2, 3, 4}, f64)};
  const auto state = opt.init(p);
  const MlpLoptDecays decays = opt.decays(f64);
  CHECK(mlp_lopt_update_fused_applies(p, p, opt.weights(), decays, state, f64));
  // A parameter in another dtype than the compute dtype, a rank-3 tensor, a trainable weight: the tensor path.
  CHECK_FALSE(mlp_lopt_update_fused_applies({p[0].to(at::kFloat)}, {p[0]}, opt.weights(), decays, state, f64));
  CHECK_FALSE(mlp_lopt_update_fused_applies({at::zeros({2, 2, 2, 2}, f64)}, {at::zeros({2, 2, 2, 2}, f64)},
                                            opt.weights(), decays, state, f64));
  TensorList trainable = opt.weights();
  trainable[0] = trainable[0].clone().requires_grad_(true);
  CHECK_FALSE(mlp_lopt_update_fused_applies(p, p, trainable, decays, state, f64));
  // 16 + 15 + 2·28 + 2·(28·4 + 4·4 + 2·4) + 2·4 + 5 with the defaults; it grows with the width.
  CHECK(MlpLopt().flops_per_coordinate() == 372.0);
  MlpLoptOptions wide;
  wide.hidden = 6;
  CHECK(MlpLopt(wide).flops_per_coordinate() == 16 + 15 + 56 + 2 * (28 * 6 + 36 + 12) + 12 + 5);
}
