#include "hamlet/learned/mlp_lopt.hpp"

#include <algorithm>
#include <array>
#include <cmath>

#include "hamlet/core/error.hpp"
#include "hamlet/core/seed.hpp"
#include "hamlet/learned/mlp_lopt_kernel.hpp"
#include "hamlet/learned/mlp_lopt_update_kernel.hpp"

namespace hamlet::learned {
namespace {

constexpr std::array<double, 3> kMomentumInit = {0.9, 0.99, 0.999};
constexpr std::array<double, 1> kRmsInit = {0.999};
constexpr std::array<double, 3> kAdafactorInit = {0.9, 0.99, 0.999};
constexpr std::array<double, kMlpLoptTimeFeatures> kTimeScales = {1,    3,    10,    30,    100,   300,
                                                                   1000, 3000, 10000, 30000, 100000};

// β = 1 − (1 − β_init)·exp(10 φ): φ = 0 is the hand-set decay, and the parametrisation keeps meta-gradients of
// decays near 1 (0.999) on the same scale as those near 0.9.
template <std::size_t N>
at::Tensor decay_from_param(const at::Tensor& phi, const std::array<double, N>& init) {
  std::vector<double> one_minus;
  for (double b : init) one_minus.push_back(1.0 - b);
  const at::Tensor base = at::tensor(one_minus, at::TensorOptions().dtype(at::kDouble)).to(phi.options());
  return 1.0 - base * (10.0 * phi).exp();
}

// (d1, d0): the second largest and the largest axis of a per-problem shape, by a stable ascending argsort of the
// sizes, so equal sizes resolve to d1 < d0 (docs/methods.md §11.3; pretrained weights depend on this rule).
std::pair<int64_t, int64_t> factored_axes(at::IntArrayRef shape) {
  std::vector<int64_t> order(shape.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int64_t>(i);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return shape[a] < shape[b]; });
  return {order[order.size() - 2], order.back()};
}

// Truncated to [−2, 2] by redrawing the values outside, without rescaling the variance (dm-haiku's
// TruncatedNormal): the realised std is ≈ 0.8796.
at::Tensor truncated_normal(at::IntArrayRef shape, at::Generator& generator) {
  at::Tensor x = at::empty(shape, at::TensorOptions().dtype(at::kDouble)).normal_(0.0, 1.0, generator);
  for (at::Tensor outside = x.abs() > 2.0; outside.any().item<bool>(); outside = x.abs() > 2.0) {
    x = at::where(outside, at::empty_like(x).normal_(0.0, 1.0, generator), x);
  }
  return x;
}

// Per-problem shape processed for a parameter [B, S...]: a scalar per problem ([B]) becomes [B, 1].
at::Tensor as_processed(const at::Tensor& x) { return x.dim() == 1 ? x.unsqueeze(1) : x; }

std::vector<int64_t> with_width(at::IntArrayRef shape, int64_t width) {
  std::vector<int64_t> s(shape.begin(), shape.end());
  s.push_back(width);
  return s;
}

}  // namespace

at::Tensor mlp_lopt_features(const at::Tensor& p, const at::Tensor& g, const MlpLoptDecays& decays,
                             MlpLoptAccumulators& acc) {
  const int64_t rank = p.dim() - 1;
  HAMLET_CHECK(rank >= 1 && g.sizes() == p.sizes(), "mlp-lopt: features need p and g of one shape [B, S...] with S of "
               "rank >= 1, got ", p.sizes(), " and ", g.sizes());
  const at::Tensor g1 = g.unsqueeze(-1);
  const at::Tensor g2 = g * g;
  acc.m = decays.momentum * acc.m + (1.0 - decays.momentum) * g1;
  const at::Tensor beta_v = decays.rms.clamp(0.0, 1.0);
  acc.v = beta_v * acc.v + (1.0 - beta_v) * g2.unsqueeze(-1);
  const at::Tensor q = (g2 + 1e-30).unsqueeze(-1);
  const at::Tensor beta_f = decays.adafactor.clamp(0.0, 1.0);
  const std::vector<int64_t> full = with_width(p.sizes(), 3);

  at::Tensor scale, acc_a, acc_b, m_scaled;
  if (rank >= 2) {
    const auto [d1, d0] = factored_axes(p.sizes().slice(1));
    const int64_t a0 = d0 + 1, a1 = d1 + 1;  // the axes in [B, S...]
    acc.fac_r = beta_f * acc.fac_r + (1.0 - beta_f) * q.mean(a0);
    acc.fac_c = beta_f * acc.fac_c + (1.0 - beta_f) * q.mean(a1);
    const int64_t r_axis = (d1 > d0 ? d1 - 1 : d1) + 1;  // d1 inside R, which lacks d0
    const at::Tensor row = (acc.fac_r / (acc.fac_r.mean(r_axis, /*keepdim=*/true) + 1e-9)).clamp_min(1e-9).rsqrt();
    const at::Tensor col = acc.fac_c.clamp_min(1e-9).rsqrt();
    scale = row.unsqueeze(a0) * col.unsqueeze(a1);
    acc_a = acc.fac_r.unsqueeze(a0).expand(full);
    acc_b = acc.fac_c.unsqueeze(a1).expand(full);
    m_scaled = acc.m * scale;
  } else {
    acc.fac_r = beta_f * acc.fac_r + (1.0 - beta_f) * q;
    scale = (acc.fac_r + 1e-9).clamp_min(1e-9).rsqrt();
    acc_a = acc_b = acc.fac_r;
    m_scaled = acc.m * (acc.fac_r + 1e-6).rsqrt();
  }
  const at::Tensor rs = (acc.v + 1e-6).rsqrt();
  return at::cat({g1, p.unsqueeze(-1), acc.m, acc.v, acc.m * rs, rs, g1 * scale, acc_a, acc_b, (acc_a + 1e-8).rsqrt(),
                  (acc_b + 1e-8).rsqrt(), m_scaled},
                 -1);
}

at::Tensor mlp_lopt_normalise(const at::Tensor& raw) {
  std::vector<int64_t> dims;
  for (int64_t d = 1; d + 1 < raw.dim(); ++d) dims.push_back(d);
  return raw / (raw.square().mean(dims, /*keepdim=*/true) + 1e-5).sqrt();
}

at::Tensor mlp_lopt_time_features(int64_t t) {
  std::vector<double> values;
  for (double s : kTimeScales) values.push_back(std::tanh(static_cast<double>(t) / s - 1.0));
  return at::tensor(values, at::TensorOptions().dtype(at::kDouble));
}

const OptionSpec<MlpLoptOptions>& MlpLoptOptions::spec() {
  using O = MlpLoptOptions;
  static const auto s =
      OptionSpec<O>("mlp-lopt")
          .add("hidden", &O::hidden, "width of each hidden layer", checks::positive).architecture()
          .add("hidden_layers", &O::hidden_layers, "number of hidden layers", checks::non_negative).architecture()
          .add("exp_mult", &O::exp_mult, "lambda_e, scale of the magnitude output", checks::finite)
          .add("step_mult", &O::step_mult, "lambda_s, scale of the direction output", checks::positive)
          .add("out_mul", &O::out_mul, "output scale (the tuner's knob)", checks::finite)
          .add("seed", &O::seed, "seed of the weight initialisation", checks::non_negative)
          .add("dtype", &O::dtype, "weight dtype: float32 | float64", check_weight_dtype)
          .add("kernel", &O::kernel, "evaluation steps as the fused kernel or as tensor operations", checks::one_of({"fused", "tensor"}))
          .add("weights", &O::weights, "weight file this optimizer was loaded from").omit_when_empty();
  return s;
}

MlpLopt::MlpLopt(MlpLoptOptions options) : ConfiguredLearnedOptimizer(std::move(options)) {
  at::Generator gen = make_generator(static_cast<uint64_t>(options_.seed));
  const auto dtype = weights_.dtype();
  std::vector<int64_t> sizes = {kMlpLoptFeatures + kMlpLoptTimeFeatures};
  for (int64_t l = 0; l < options_.hidden_layers; ++l) sizes.push_back(options_.hidden);
  sizes.push_back(2);
  for (std::size_t l = 0; l + 1 < sizes.size(); ++l) {
    const std::string prefix = "mlp." + std::to_string(l) + ".";
    const double fan_in = static_cast<double>(sizes[l]);
    weights_.add(prefix + "w", (truncated_normal({sizes[l], sizes[l + 1]}, gen) / std::sqrt(fan_in)).to(dtype));
    weights_.add(prefix + "b", at::zeros({sizes[l + 1]}, at::TensorOptions().dtype(dtype)));
  }
  weights_.add("momentum_decays", at::zeros({3}, at::TensorOptions().dtype(dtype)));
  weights_.add("rms_decays", at::zeros({1}, at::TensorOptions().dtype(dtype)));
  weights_.add("adafactor_decays", at::zeros({3}, at::TensorOptions().dtype(dtype)));
}

std::string MlpLopt::architecture() const {
  return detail::concat("mlp-lopt features=", kMlpLoptFeatures + kMlpLoptTimeFeatures, " hidden=", options_.hidden,
                        " hidden_layers=", options_.hidden_layers);
}

namespace {

// The decays from a weight list already converted to the compute options (its last three tensors are φ).
MlpLoptDecays decays_of(const TensorList& w) {
  const std::size_t n = w.size();
  return {decay_from_param(w[n - 3], kMomentumInit), decay_from_param(w[n - 2], kRmsInit),
          decay_from_param(w[n - 1], kAdafactorInit)};
}

}  // namespace

MlpLoptDecays MlpLopt::decays(const at::TensorOptions& opts) const { return decays_of(weights_.on(opts)); }

namespace {

// The shapes of R and C of a factored tensor p [B, S...] (rank(S) ≥ 2).
std::pair<std::vector<int64_t>, std::vector<int64_t>> factored_shapes(const at::Tensor& p) {
  const auto [d1, d0] = factored_axes(p.sizes().slice(1));
  std::vector<int64_t> r(p.sizes().begin(), p.sizes().end()), c = r;
  r.erase(r.begin() + d0 + 1);
  c.erase(c.begin() + d1 + 1);
  return {with_width(r, 3), with_width(c, 3)};
}

}  // namespace

at::Tensor MlpLoptAccumulators::to_slot() const {
  const int64_t b = m.size(0);
  if (!fac_c.defined()) return fac_r.reshape({b, -1, 3});
  return at::cat({fac_r.reshape({b, -1, 3}), fac_c.reshape({b, -1, 3})}, 1);
}

MlpLoptAccumulators MlpLoptAccumulators::from_slots(const at::Tensor& p, const at::Tensor& m, const at::Tensor& v,
                                                    const at::Tensor& fac) {
  if (p.dim() < 3) return {m, v, fac.reshape(with_width(p.sizes(), 3)), at::Tensor()};
  const auto [r, c] = factored_shapes(p);
  int64_t rows = 1;  // R's entries per problem and decay
  for (std::size_t k = 1; k + 1 < r.size(); ++k) rows *= r[k];
  HAMLET_CHECK(fac.dim() == 3 && fac.size(1) >= rows, "mlp-lopt: slot 'fac' of shape ", fac.sizes(),
               " does not fit a parameter of shape ", p.sizes());
  return {m, v, fac.narrow(1, 0, rows).reshape(r), fac.narrow(1, rows, fac.size(1) - rows).reshape(c)};
}

void mlp_lopt_init_slots(const TensorList& params, at::ScalarType dtype, optim::OptimizerState& state) {
  for (const auto& param : params) {
    const at::Tensor p = as_processed(param);
    const auto opts = p.options().dtype(dtype);
    MlpLoptAccumulators acc{at::zeros(with_width(p.sizes(), 3), opts), at::zeros(with_width(p.sizes(), 1), opts),
                            at::Tensor(), at::Tensor()};
    if (p.dim() >= 3) {
      const auto [r, c] = factored_shapes(p);
      acc.fac_r = at::zeros(r, opts);
      acc.fac_c = at::zeros(c, opts);
    } else {
      acc.fac_r = at::zeros(with_width(p.sizes(), 3), opts);
    }
    state.slots["m"].push_back(acc.m);
    state.slots["v"].push_back(acc.v);
    state.slots["fac"].push_back(acc.to_slot());
  }
}

at::Tensor mlp_lopt_feature_rows(const TensorList& params, const TensorList& grads, const MlpLoptDecays& decays,
                                 const optim::OptimizerState& state, optim::OptimizerState& next,
                                 const at::TensorOptions& opts, bool fused) {
  if (fused && mlp_lopt_fused_applies(params, grads, decays, opts)) {
    return mlp_lopt_feature_rows_fused(params, grads, decays, state, next, opts);
  }
  for (const char* slot : {"m", "v", "fac"}) {
    const auto it = state.slots.find(slot);
    HAMLET_CHECK(it != state.slots.end() && it->second.size() == params.size(), "mlp-lopt features: state has no slot '",
                 slot, "' for every parameter tensor (call init() first)");
  }
  TensorList rows;
  for (std::size_t i = 0; i < params.size(); ++i) {
    const at::Tensor p = as_processed(params[i]).to(opts);
    MlpLoptAccumulators acc = MlpLoptAccumulators::from_slots(
        p, state.slots.at("m")[i].to(opts), state.slots.at("v")[i].to(opts), state.slots.at("fac")[i].to(opts));
    const at::Tensor features = mlp_lopt_normalise(mlp_lopt_features(p, as_processed(grads[i]).to(opts), decays, acc));
    rows.push_back(features.reshape({-1, kMlpLoptFeatures}));
    next.slots["m"].push_back(acc.m);
    next.slots["v"].push_back(acc.v);
    next.slots["fac"].push_back(acc.to_slot());
  }
  return at::cat(rows);
}

MlpLoptDecays mlp_lopt_default_decays(const at::TensorOptions& opts) {
  const at::Tensor zero3 = at::zeros({3}, opts), zero1 = at::zeros({1}, opts);
  return {decay_from_param(zero3, kMomentumInit), decay_from_param(zero1, kRmsInit),
          decay_from_param(zero3, kAdafactorInit)};
}

optim::OptimizerState MlpLopt::init(const TensorList& params) const {
  optim::OptimizerState state;
  mlp_lopt_init_slots(params, compute_dtype(weights_.dtype(), params), state);
  return state;
}

double MlpLopt::flops_per_coordinate() const {
  const double w = static_cast<double>(options_.hidden), l = static_cast<double>(options_.hidden_layers);
  // Multiply-adds of the linear layers (28 → 2 directly without hidden layers).
  const double mlp = 2.0 * (l > 0 ? kMlpLoptFeatures * w + (l - 1) * w * w + 2.0 * w : kMlpLoptFeatures * 2.0);
  return 16 + 15 + 2.0 * kMlpLoptFeatures + mlp + l * w + 5;
}

double MlpLopt::activations_per_coordinate() const { return 1; }

optim::StepResult MlpLopt::update(const TensorList& params, const TensorList& grads, const at::Tensor& loss,
                                  const optim::OptimizerState& state) const {
  HAMLET_CHECK(grads.size() == params.size(), "mlp-lopt: ", grads.size(), " gradients for ", params.size(),
               " parameter tensors");
  const auto opts = params[0].options().dtype(compute_dtype(weights_.dtype(), params));
  const TensorList w = weights_.on(opts);

  const bool fused = options_.kernel == "fused" && !weights_.any_requires_grad();
  const MlpLoptDecays decays = decays_of(w);
  if (fused && mlp_lopt_update_fused_applies(params, grads, w, decays, state, opts)) {
    return mlp_lopt_update_fused(options_, w, decays, params, grads, state, opts);
  }

  optim::StepResult result;
  result.state.step = state.step + 1;
  const at::Tensor rows = mlp_lopt_feature_rows(params, grads, decays, state, result.state, opts, fused);
  // The time features are the same for every coordinate, so their share of layer 0 is a bias.
  const std::size_t layers = static_cast<std::size_t>(options_.hidden_layers) + 1;
  const at::Tensor time = mlp_lopt_time_features(state.step).to(opts);
  const at::Tensor bias0 = w[1] + at::matmul(time, w[0].narrow(0, kMlpLoptFeatures, kMlpLoptTimeFeatures));
  at::Tensor h = at::addmm(bias0, rows, w[0].narrow(0, 0, kMlpLoptFeatures));
  for (std::size_t l = 1; l < layers; ++l) h = at::addmm(w[2 * l + 1], h.relu(), w[2 * l]);
  const at::Tensor direction = h.select(1, 0), magnitude = h.select(1, 1);
  const at::Tensor step = direction * (options_.exp_mult * magnitude).exp() * (options_.step_mult * options_.out_mul);

  const TensorList deltas = from_rows(step, params);
  for (std::size_t i = 0; i < params.size(); ++i) result.params.push_back(params[i] - deltas[i].to(params[i].dtype()));
  return result;
}

}  // namespace hamlet::learned
