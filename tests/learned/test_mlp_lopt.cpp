#include <torch/csrc/autograd/autograd.h>

#include <cmath>
#include <vector>

#include "hamlet/core/seed.hpp"
#include "hamlet/learned/mlp_lopt.hpp"
#include "hamlet/learned/mlp_lopt_kernel.hpp"
#include "hamlet/learned/registry.hpp"
#include "support/catch.hpp"
#include "support/test_support.hpp"

using namespace hamlet;
using namespace hamlet::learned;

namespace {

const auto kF64 = at::TensorOptions().dtype(at::kDouble);

at::Tensor t64(std::vector<double> values, std::vector<int64_t> shape) {
  return at::tensor(values, kF64).reshape(shape);
}

// The test weights of docs/methods.md §11.8: W_l[i,k] = sin(1 + i·n_out + k)/√n_in, b_l[k] = 0.01·(k+1), decays 0.
MlpLopt known_answer_optimizer(const std::string& dtype) {
  MlpLoptOptions o;
  o.dtype = dtype;
  MlpLopt opt(o);
  const std::vector<std::pair<int64_t, int64_t>> layers = {{39, 4}, {4, 4}, {4, 2}};
  TensorList w;
  for (const auto& [n_in, n_out] : layers) {
    std::vector<double> wv, bv;
    for (int64_t i = 0; i < n_in; ++i) {
      for (int64_t k = 0; k < n_out; ++k) wv.push_back(std::sin(1.0 + static_cast<double>(i * n_out + k)) / std::sqrt(n_in));
    }
    for (int64_t k = 0; k < n_out; ++k) bv.push_back(0.01 * static_cast<double>(k + 1));
    w.push_back(t64(wv, {n_in, n_out}));
    w.push_back(t64(bv, {n_out}));
  }
  w.push_back(at::zeros({3}, kF64));
  w.push_back(at::zeros({1}, kF64));
  w.push_back(at::zeros({3}, kF64));
  opt.set_weights(w);
  return opt;
}

// |a − b| ≤ rel·|b| + abs elementwise, for the printed known answers (6 significant figures).
void check_close(const at::Tensor& actual, const std::vector<double>& expected, double rel, double abs = 0.0) {
  const at::Tensor a = actual.to(at::kDouble).flatten();
  REQUIRE(a.numel() == static_cast<int64_t>(expected.size()));
  for (std::size_t i = 0; i < expected.size(); ++i) {
    INFO("index " << i << ": " << a[static_cast<int64_t>(i)].item<double>() << " vs " << expected[i]);
    CHECK(std::abs(a[static_cast<int64_t>(i)].item<double>() - expected[i]) <= rel * std::abs(expected[i]) + abs);
  }
}

MlpLoptAccumulators zero_accumulators(const MlpLopt& opt, const at::Tensor& p) {
  const auto state = opt.init({p});
  return MlpLoptAccumulators::from_slots(p, state.slots.at("m")[0], state.slots.at("v")[0], state.slots.at("fac")[0]);
}

}  // namespace

TEST_CASE("mlp-lopt: parameter count, names, initialisation and decays") {
  const MlpLopt opt{MlpLoptOptions{}};
  CHECK(opt.num_params() == 197);
  CHECK(opt.weight_names() == std::vector<std::string>{"mlp.0.w", "mlp.0.b", "mlp.1.w", "mlp.1.b", "mlp.2.w", "mlp.2.b",
                                                      "momentum_decays", "rms_decays", "adafactor_decays"});
  CHECK(opt.architecture() == "mlp-lopt features=39 hidden=4 hidden_layers=2");
  CHECK(opt.weights()[0].scalar_type() == at::kFloat);
  CHECK(opt.learning_rate() == 1.0);
  // TN(−2, 2)/√fan_in: bounded by 2/√fan_in; over many draws the std is 0.8796/√fan_in (no variance correction).
  const TensorList w = opt.weights();
  CHECK(w[0].abs().max().item<double>() <= 2.0 / std::sqrt(39.0) + 1e-7);
  for (std::size_t i : {1, 3, 5, 6, 7, 8}) CHECK(w[i].abs().max().item<double>() == 0.0);
  MlpLoptOptions wide;
  wide.hidden = 400;
  wide.dtype = "float64";
  const at::Tensor big = MlpLopt(wide).weights()[0] * std::sqrt(39.0);  // 15,600 draws
  CHECK(big.abs().max().item<double>() <= 2.0);
  CHECK(big.std().item<double>() == Approx(0.879626).margin(0.015));
  CHECK(big.mean().item<double>() == Approx(0.0).margin(0.02));
  // Decay parameters 0 give the hand-set decays.
  const MlpLoptDecays d = opt.decays(kF64);
  CHECK(test::max_abs_diff(d.momentum, t64({0.9, 0.99, 0.999}, {3})) < 1e-15);
  CHECK(test::max_abs_diff(d.rms, t64({0.999}, {1})) < 1e-15);
  CHECK(test::max_abs_diff(d.adafactor, t64({0.9, 0.99, 0.999}, {3})) < 1e-15);
  // φ = 0.1 on the first momentum decay: β = 1 − 0.1·e.
  MlpLopt moved = known_answer_optimizer("float64");
  TensorList mw = moved.weights();
  mw[6] = t64({0.1, 0.0, 0.0}, {3});
  moved.set_weights(mw);
  CHECK(moved.decays(kF64).momentum[0].item<double>() == Approx(1.0 - 0.1 * std::exp(1.0)).epsilon(1e-14));
  // Time features: tanh(t/s − 1).
  check_close(mlp_lopt_time_features(0), std::vector<double>(11, -0.761594), 1e-6);
  CHECK(mlp_lopt_time_features(3)[1].item<double>() == Approx(0.0).margin(1e-15));
  CHECK(mlp_lopt_time_features(20)[2].item<double>() == Approx(std::tanh(1.0)).epsilon(1e-14));
}

TEST_CASE("mlp-lopt: known answer of docs/methods.md 11.8, factored 2x3 tensor over two steps") {
  for (const std::string dtype : {"float64", "float32"}) {
    INFO(dtype);
    const double rel = dtype == "float64" ? 2e-5 : 5e-5;  // the reference prints 6 significant figures
    const MlpLopt opt = known_answer_optimizer(dtype);
    const auto o = at::TensorOptions().dtype(dtype == "float64" ? at::kDouble : at::kFloat);
    const at::Tensor p0 = t64({0.5, -1, 0.25, 2, 0, -0.75}, {1, 2, 3}).to(o);
    const at::Tensor g0 = t64({0.1, -0.2, 0.3, -0.4, 0.5, 0.05}, {1, 2, 3}).to(o);
    const at::Tensor g1 = t64({-0.05, 0.15, 0.2, 0.3, -0.1, 0.25}, {1, 2, 3}).to(o);

    SECTION("raw and normalised features at (0,0)") {
      MlpLoptAccumulators acc = zero_accumulators(opt, p0);
      const at::Tensor raw = mlp_lopt_features(p0, g0, opt.decays(o), acc);
      REQUIRE(raw.sizes() == at::IntArrayRef({1, 2, 3, 28}));
      check_close(raw[0][0][0],
                  {0.1,     0.5,      0.01,      0.001,     0.0001,     1e-05,      3.01511,   0.301511, 0.0301511, 301.511,
                   1.52362, 4.81812,  15.2363,   0.00466667, 0.000466667, 4.66667e-05, 0.0085,    0.00085,  8.5e-05,
                   14.6385, 46.2905,  146.369,   10.8465,   34.2995,    108.459,    0.152362,  0.0481812, 0.0152363},
                  rel);
      check_close(mlp_lopt_normalise(raw)[0][0][0],
                  {0.329523, 0.505289, 0.327766, 0.228168, 0.0314782, 0.0031597, 0.988889, 0.988836, 0.983613, 1.13664,
                   0.443929, 0.44393,  0.44393,  0.434376, 0.14036,   0.0147495, 0.805708, 0.256134, 0.0268658, 1.22197,
                   1.22197,  1.22195,  0.936033, 0.936035, 0.936053,  0.443911,  0.443741, 0.442057},
                  rel);
      // ρ_0 (row 0) and γ_0 (column 0): fac_g_0 = g·ρ_0·γ_0.
      CHECK(raw[0][0][0][10].item<double>() / 0.1 == Approx(1.40472 * 10.8465).epsilon(rel));
    }

    SECTION("steps t = 0 and t = 1") {
      const auto s0 = opt.init({p0});
      const auto r1 = opt.update({p0}, {g0}, at::Tensor(), s0);
      check_close(p0 - r1.params[0],
                  {-1.18978e-06, 3.51072e-05, -7.13775e-06, 5.26945e-06, 1.4709e-05, -1.14801e-05}, rel);
      check_close(r1.params[0], {0.50000119, -1.00003511, 0.250007138, 1.99999473, -1.47089613e-05, -0.74998852},
                  dtype == "float64" ? 1e-8 : 1e-6, dtype == "float64" ? 1e-13 : 1e-9);
      CHECK(r1.state.step == 1);
      const auto r2 = opt.update(r1.params, {g1}, at::Tensor(), r1.state);
      check_close(r1.params[0] - r2.params[0],
                  {2.38324e-05, -2.36029e-05, -3.74805e-05, 2.20415e-05, 1.86509e-05, -4.00153e-05},
                  dtype == "float64" ? rel : 2e-3);  // float32: a difference of two rounded parameters
      check_close(r2.params[0], {0.499977357, -1.0000115, 0.250044618, 1.99997269, -3.33598836e-05, -0.749948505},
                  dtype == "float64" ? 1e-8 : 1e-6, dtype == "float64" ? 1e-13 : 1e-9);
    }
  }
}

TEST_CASE("mlp-lopt: known answer of docs/methods.md 11.8, 1-D tensor (non-factored path)") {
  const MlpLopt opt = known_answer_optimizer("float64");
  const at::Tensor p = t64({0.1, -0.2, 0.3}, {1, 3}), g = t64({0.3, -0.1, 0.2}, {1, 3});
  MlpLoptAccumulators acc = zero_accumulators(opt, p);
  check_close(mlp_lopt_features(p, g, opt.decays(kF64), acc)[0][0],
              {0.3,     0.1,     0.03,    0.003,   0.0003,  9e-05,   3.14485, 0.314485, 0.0314485, 104.828,
               3.16228, 9.99999, 31.6226, 0.009,   0.0009,  9e-05,   0.009,   0.0009,   9e-05,     10.5409,
               33.3331, 105.403, 10.5409, 33.3331, 105.403, 0.31621, 0.0999445, 0.0314485},
              2e-5);
  const auto r = opt.update({p}, {g}, at::Tensor(), opt.init({p}));
  check_close(p - r.params[0], {2.56266e-05, 1.41159e-05, -2.80979e-06}, 2e-5);
  CHECK(r.state.slots.at("fac")[0].sizes() == at::IntArrayRef({1, 3, 3}));  // V: K = N
}

TEST_CASE("mlp-lopt: factored axes follow sizes, ties put d1 first") {
  const MlpLopt opt = known_answer_optimizer("float64");
  at::Generator gen = make_generator(3);
  // Feature 13 is R_0 = (1 − 0.9)·mean over d0 of (g² + 1e-30), broadcast over d0.
  const auto r0 = [&](const at::Tensor& g) {
    MlpLoptAccumulators acc = zero_accumulators(opt, g);
    return mlp_lopt_features(at::zeros_like(g), g, opt.decays(kF64), acc).select(-1, 13);
  };
  SECTION("3x2: the largest axis is 0, so R is per column") {
    const at::Tensor g = at::randn({1, 3, 2}, gen, kF64);
    CHECK(test::max_abs_diff(r0(g), (0.1 * (g * g).mean(1, true)).expand_as(g)) < 1e-15);
  }
  SECTION("2x3 and a square 3x3: R is per row") {
    const at::Tensor g = at::randn({1, 2, 3}, gen, kF64);
    CHECK(test::max_abs_diff(r0(g), (0.1 * (g * g).mean(2, true)).expand_as(g)) < 1e-15);
    const at::Tensor square = at::randn({1, 3, 3}, gen, kF64);
    CHECK(test::max_abs_diff(r0(square), (0.1 * (square * square).mean(2, true)).expand_as(square)) < 1e-15);
  }
  SECTION("rank 3 [2, 4, 3]: d0 = 1, d1 = 2") {
    const at::Tensor g = at::randn({1, 2, 4, 3}, gen, kF64);
    CHECK(test::max_abs_diff(r0(g), (0.1 * (g * g).mean(2, true)).expand_as(g)) < 1e-15);
    // The flat slot holds R [2, 3] then C [2, 4]; it round-trips through the accumulators.
    const auto r = opt.update({g}, {g}, at::Tensor(), opt.init({g}));
    const at::Tensor fac = r.state.slots.at("fac")[0];
    CHECK(fac.sizes() == at::IntArrayRef({1, 14, 3}));
    const MlpLoptAccumulators acc = MlpLoptAccumulators::from_slots(g, r.state.slots.at("m")[0], r.state.slots.at("v")[0], fac);
    CHECK(acc.fac_r.sizes() == at::IntArrayRef({1, 2, 3, 3}));
    CHECK(acc.fac_c.sizes() == at::IntArrayRef({1, 2, 4, 3}));
    CHECK(at::equal(acc.to_slot(), fac));
    CHECK(test::max_abs_diff(acc.fac_r.select(-1, 0), 0.1 * (g * g + 1e-30).mean(2)) < 1e-15);
  }
}

TEST_CASE("mlp-lopt: zero gradients, scalar parameters and problems batched in one program") {
  const MlpLopt opt = known_answer_optimizer("float64");
  at::Generator gen = make_generator(11);
  const TensorList p = {at::randn({3, 4, 5}, gen, kF64), at::randn({3, 5}, gen, kF64), at::randn({3}, gen, kF64)};
  // An all-zero gradient gives finite features and a finite step (the epsilons of docs/methods.md §11.8).
  TensorList zero;
  for (const auto& x : p) zero.push_back(at::zeros_like(x));
  const auto rz = opt.update(p, zero, at::Tensor(), opt.init(p));
  for (const auto& x : rz.params) CHECK(x.isfinite().all().item<bool>());
  // A scalar per problem is a tensor of shape [1]; [B] in, [B] out.
  const TensorList g = {at::randn({3, 4, 5}, gen, kF64), at::randn({3, 5}, gen, kF64), at::randn({3}, gen, kF64)};
  const auto r = opt.update(p, g, at::Tensor(), opt.init(p));
  CHECK(r.params[2].sizes() == at::IntArrayRef({3}));
  const auto r_one = opt.update({p[2].unsqueeze(1)}, {g[2].unsqueeze(1)}, at::Tensor(), opt.init({p[2].unsqueeze(1)}));
  CHECK(test::max_abs_diff(r.params[2], r_one.params[0].squeeze(1)) < 1e-15);
  // Each tensor is normalised on its own: tensor 0's step does not depend on the other tensors.
  const auto r_first = opt.update({p[0]}, {g[0]}, at::Tensor(), opt.init({p[0]}));
  CHECK(test::max_abs_diff(r.params[0], r_first.params[0]) < 1e-15);
}

TEST_CASE("mlp-lopt: meta-gradients reach all 197 weights and match central differences (float64)") {
  MlpLopt opt = known_answer_optimizer("float64");
  at::Generator gen = make_generator(5);
  const TensorList p = {at::randn({2, 3, 4}, gen, kF64), at::randn({2, 4}, gen, kF64)};
  const TensorList g1 = {at::randn({2, 3, 4}, gen, kF64), at::randn({2, 4}, gen, kF64)};
  const TensorList g2 = {at::randn({2, 3, 4}, gen, kF64), at::randn({2, 4}, gen, kF64)};
  const at::Tensor target = at::randn({2, 3, 4}, gen, kF64);
  // A scalar of θ after two updates that depends on every weight (a large out_mul makes the steps matter).
  const auto objective = [&](const MlpLopt& o) {
    const auto a = o.update(p, g1, at::Tensor(), o.init(p));
    const auto b = o.update(a.params, g2, at::Tensor(), a.state);
    return ((b.params[0] * target).sum() + b.params[1].square().sum()) * 1e3;
  };
  MlpLoptOptions big;
  big.dtype = "float64";
  big.out_mul = 300.0;
  MlpLopt scaled(big);
  scaled.set_weights(opt.weights());
  scaled.set_trainable(true);
  const TensorList w = scaled.weights();
  const TensorList grads = torch::autograd::grad({objective(scaled)}, w);
  for (std::size_t i = 0; i < w.size(); ++i) {
    INFO(scaled.weight_names()[i]);
    CHECK(grads[i].abs().min().item<double>() > 0.0);
  }
  // Central differences on a few entries, the decays among them.
  scaled.set_trainable(false);
  const double eps = 1e-5;
  for (const auto& [i, j] : std::vector<std::pair<std::size_t, int64_t>>{{0, 5}, {1, 2}, {4, 3}, {5, 1}, {6, 0}, {7, 0}, {8, 2}}) {
    TensorList plus = scaled.weights(), minus = scaled.weights();
    plus[i] = plus[i].clone();
    minus[i] = minus[i].clone();
    plus[i].view(-1)[j] += eps;
    minus[i].view(-1)[j] -= eps;
    MlpLopt a(big), b(big);
    a.set_weights(plus);
    b.set_weights(minus);
    const double fd = (objective(a).item<double>() - objective(b).item<double>()) / (2 * eps);
    INFO(scaled.weight_names()[i] << "[" << j << "]");
    CHECK(grads[i].view(-1)[j].item<double>() == Approx(fd).epsilon(1e-6).margin(1e-7));
  }
}

TEST_CASE("mlp-lopt: trained weights round trip and architecture checks") {
  const auto opt = make_learned("mlp-lopt", {{"seed", "3"}, {"out_mul", "2"}, {"hidden", "6"}});
  CHECK(opt->num_params() == 39 * 6 + 6 + 6 * 6 + 6 + 6 * 2 + 2 + 7);
  TrainedWeights trained = trained_weights(*opt);
  trained.source = "mlp.h5";
  const auto loaded = make_learned("mlp-lopt", {}, trained);
  for (std::size_t i = 0; i < opt->weights().size(); ++i) CHECK(at::equal(opt->weights()[i], loaded->weights()[i]));
  CHECK(loaded->learning_rate() == 2.0);
  CHECK(loaded->architecture() == "mlp-lopt features=39 hidden=6 hidden_layers=2");
  CHECK_THROWS_WITH(make_learned("mlp-lopt", {{"hidden", "4"}}, trained),
                    Catch::Contains("hidden") && Catch::Contains("mlp.h5"));
  CHECK_THROWS_WITH(make_learned("mlp-lopt", {{"step_mult", "0"}}), Catch::Contains("mlp-lopt.step_mult"));
  CHECK_THROWS_WITH(make_learned("mlp-lopt", {{"preprocess", "true"}}), Catch::Contains("preprocess"));
}

TEST_CASE("mlp-lopt: the fused feature kernel equals the tensor operations (float64 1e-12, float32 rounding)") {
  // Both factored orientations, a tie (d1 first), a vector and a per-problem scalar, three problems, three steps.
  for (const auto dtype : {at::kDouble, at::kFloat}) {
    const auto opts = at::TensorOptions().dtype(dtype);
    at::Generator gen = make_generator(8);
    TensorList params = {at::randn({3, 3, 5}, gen, opts), at::randn({3, 6, 2}, gen, opts),
                         at::randn({3, 4, 4}, gen, opts), at::randn({3, 7}, gen, opts), at::randn({3}, gen, opts)};
    optim::OptimizerState fused_state, tensor_state;
    mlp_lopt_init_slots(params, dtype, fused_state);
    mlp_lopt_init_slots(params, dtype, tensor_state);
    const MlpLoptDecays decays = mlp_lopt_default_decays(opts);
    REQUIRE(mlp_lopt_fused_applies(params, params, decays, opts));
    double worst = 0;
    for (int step = 0; step < 3; ++step) {
      TensorList grads;
      for (const auto& p : params) grads.push_back(at::randn(p.sizes(), gen, opts) * (step + 1));
      optim::OptimizerState fused_next, tensor_next;
      const at::Tensor a = mlp_lopt_feature_rows(params, grads, decays, fused_state, fused_next, opts, true);
      const at::Tensor b = mlp_lopt_feature_rows(params, grads, decays, tensor_state, tensor_next, opts, false);
      REQUIRE(a.sizes() == b.sizes());
      worst = std::max(worst, test::max_rel_diff(a, b));
      for (const char* slot : {"m", "v", "fac"}) {
        for (std::size_t i = 0; i < params.size(); ++i) {
          REQUIRE(fused_next.slots.at(slot)[i].sizes() == tensor_next.slots.at(slot)[i].sizes());
          worst = std::max(worst, test::max_rel_diff(fused_next.slots.at(slot)[i], tensor_next.slots.at(slot)[i]));
        }
      }
      fused_state = tensor_next;  // each step from the same point
      tensor_state = tensor_next;
    }
    INFO("dtype " << dtype << " worst " << worst);
    CHECK(worst < (dtype == at::kDouble ? 1e-12 : 5e-6));
  }
  SECTION("end to end: mlp-lopt updates with kernel=fused and kernel=tensor, and where the kernel does not apply") {
    MlpLoptOptions o;
    o.dtype = "float64";
    o.out_mul = 30;
    MlpLoptOptions t = o;
    t.kernel = "tensor";
    MlpLopt fused(o), tensor(t);
    at::Generator gen = make_generator(9);
    const auto f64 = at::TensorOptions().dtype(at::kDouble);
    const TensorList params = {at::randn({2, 4, 3}, gen, f64), at::randn({2, 4}, gen, f64)};
    const TensorList grads = {at::randn({2, 4, 3}, gen, f64), at::randn({2, 4}, gen, f64)};
    const auto rf = fused.update(params, grads, at::Tensor(), fused.init(params));
    const auto rt = tensor.update(params, grads, at::Tensor(), tensor.init(params));
    for (std::size_t i = 0; i < params.size(); ++i) CHECK(test::max_abs_diff(rf.params[i], rt.params[i]) < 1e-13);
    const MlpLoptDecays decays = mlp_lopt_default_decays(f64);
    CHECK_FALSE(mlp_lopt_fused_applies({at::zeros({2, 2, 2, 2}, f64)}, {at::zeros({2, 2, 2, 2}, f64)}, decays, f64));
    CHECK_FALSE(mlp_lopt_fused_applies({params[0].clone().requires_grad_(true)}, {grads[0]}, decays, f64));
    CHECK_FALSE(mlp_lopt_fused_applies({params[0]}, {grads[0]}, fused.decays(f64), f64.dtype(at::kHalf)));
    o.kernel = "loop";
    CHECK_THROWS_WITH(o.validate(), Catch::Contains("mlp-lopt.kernel must be fused or tensor, got 'loop'"));
  }
}
