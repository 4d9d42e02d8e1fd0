#include "hamlet/learned/phnn_lift.hpp"

#include <cmath>
#include <sstream>

#include "hamlet/core/error.hpp"
#include "hamlet/core/seed.hpp"
#include "hamlet/learned/mlp_lopt.hpp"
#include "hamlet/learned/phnn_lift_kernel.hpp"

namespace hamlet::learned {
namespace {

// x / √(mean x² + 1e-16) with the mean over `dim`: the floor keeps an all-zero block at zero without a division
// by zero and is far below any gradient scale worth resolving.
at::Tensor rms_normalise(const at::Tensor& x, int64_t dim) {
  return x / (x.square().mean(dim, /*keepdim=*/true) + 1e-16).sqrt();
}

}  // namespace

namespace lift {
namespace {

// (p/(c m))², the relativistic argument, [..., k].
at::Tensor relativistic_ratio(const at::Tensor& p, const at::Tensor& m, double speed) {
  return (p / (speed * m.unsqueeze(-1))).square();
}

}  // namespace

at::Tensor kinetic_energy(const at::Tensor& p, const at::Tensor& m, Kinetic kinetic, double speed) {
  if (kinetic == Kinetic::kQuadratic) return p.square().sum(-1) / (2.0 * m);
  // c² m (√(1 + s) − 1) = c² m s / (√(1 + s) + 1): no cancellation for small momenta.
  const at::Tensor s = relativistic_ratio(p, m, speed);
  return (speed * speed) * m * (s / ((1.0 + s).sqrt() + 1.0)).sum(-1);
}

at::Tensor kinetic_grad(const at::Tensor& p, const at::Tensor& m, Kinetic kinetic, double speed) {
  const at::Tensor velocity = p / m.unsqueeze(-1);
  if (kinetic == Kinetic::kQuadratic) return velocity;
  return velocity / (1.0 + relativistic_ratio(p, m, speed)).sqrt();
}

at::Tensor dissipation(const at::Tensor& p, const at::Tensor& m, const at::Tensor& rho, Kinetic kinetic, double speed) {
  // r = ρ p / ∂K/∂p written without the division, so that it is defined at p = 0 too.
  const at::Tensor base = rho * m.unsqueeze(-1);
  if (kinetic == Kinetic::kQuadratic) return base.expand(p.sizes());
  return base * (1.0 + relativistic_ratio(p, m, speed)).sqrt();
}

Structure structure(const at::Tensor& p, const at::Tensor& m, const at::Tensor& coupling, const at::Tensor& rho,
                    const at::Tensor& direct, Kinetic kinetic, double speed) {
  const int64_t rows = p.size(0), k = p.size(1);
  const at::Tensor zero = at::zeros({rows, 1}, p.options());
  // J: first row (0, −κᵀ), first column (0, κ), zero momentum block.
  const at::Tensor top = at::cat({zero, -coupling}, 1).unsqueeze(1);
  const at::Tensor rest = at::cat({coupling.unsqueeze(-1), at::zeros({rows, k, k}, p.options())}, 2);
  Structure out;
  out.J = at::cat({top, rest}, 1);
  out.R = at::diag_embed(at::cat({zero, dissipation(p, m, rho, kinetic, speed)}, 1));
  out.G = at::cat({(-direct / m).unsqueeze(-1), rho.expand({rows, k})}, 1);
  return out;
}

at::Tensor field(const at::Tensor& a, const at::Tensor& b, const at::Tensor& m, const at::Tensor& coupling,
                 const at::Tensor& r, const at::Tensor& rho, const at::Tensor& direct, const at::Tensor& g) {
  const at::Tensor q_dot = -(coupling * b).sum(-1) - direct / m * g;
  const at::Tensor p_dot = coupling * a.unsqueeze(-1) - r * b + rho * g.unsqueeze(-1);
  return at::cat({q_dot.unsqueeze(-1), p_dot}, -1);
}

at::Tensor ports(const at::Tensor& p, const at::Tensor& rho, const at::Tensor& g, double h) {
  const at::Tensor beta = (-h * rho).exp();
  return beta * p + (1.0 - beta) * g.unsqueeze(-1);
}

at::Tensor velocity(const at::Tensor& p, const at::Tensor& m, const at::Tensor& coupling, const at::Tensor& direct,
                    const at::Tensor& g, Kinetic kinetic, double speed) {
  return -(coupling * kinetic_grad(p, m, kinetic, speed)).sum(-1) - direct / m * g;
}

Step step(const at::Tensor& grad_v, const at::Tensor& p, const at::Tensor& m, const at::Tensor& rho,
          const at::Tensor& g, double h, const at::Tensor& coupling, const at::Tensor& direct, Kinetic kinetic,
          double speed) {
  const at::Tensor kicked = grad_v.defined() ? p + h * coupling * grad_v.unsqueeze(-1) : p;
  Step out;
  out.p_next = ports(kicked, rho, g, h);
  out.q_dot = velocity(out.p_next, m, coupling, direct, g, kinetic, speed);
  return out;
}

std::vector<double> parse_decays(const std::string& field, const std::string& text) {
  std::vector<double> out;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ':')) {
    std::size_t used = 0;
    double value = 0;
    try {
      value = std::stod(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    HAMLET_CHECK(used > 0 && used == item.size(), field, " must be decays separated by ':' (e.g. 0.9:0.99:0.999), "
                 "got '", text, "'");
    HAMLET_CHECK(std::isfinite(value) && value > 0.0 && value < 1.0, field, " must list decays in (0, 1), got ",
                 format_number(value), " in '", text, "'");
    out.push_back(value);
  }
  HAMLET_CHECK(!out.empty() && text.back() != ':', field, " must be decays separated by ':' (e.g. 0.9:0.99:0.999), "
               "got '", text, "'");
  return out;
}

}  // namespace lift

lift::Kinetic PhnnLiftOptions::kinetic_kind() const {
  return kinetic == "relativistic" ? lift::Kinetic::kRelativistic : lift::Kinetic::kQuadratic;
}

int64_t PhnnLiftOptions::features() const { return k + 2 + (time_features ? kMlpLoptTimeFeatures : 0); }

const OptionSpec<PhnnLiftOptions>& PhnnLiftOptions::spec() {
  using O = PhnnLiftOptions;
  static const auto s =
      OptionSpec<O>("phnn-lift")
          .add("k", &O::k, "number of momenta per coordinate", checks::positive).architecture()
          .add("decays", &O::decays, "initial momentum decays beta_i, k values separated by ':'",
               [](const std::string& field, const std::string& v) { lift::parse_decays(field, v); })
          .add("second_moment_decay", &O::second_moment_decay, "decay of v, the metric's second moment",
               checks::in_range(0.0, 1.0))
          .add("eps", &O::eps, "m = sqrt(v) + eps", checks::positive)
          .add("mass", &O::mass, "metric m: second-moment (sqrt(v) + eps) or constant (m = 1)",
               checks::one_of({"second-moment", "constant"}))
          .architecture()
          .add("kinetic", &O::kinetic, "kinetic energy: quadratic or relativistic (|dK/dp| < speed)",
               checks::one_of({"quadratic", "relativistic"}))
          .architecture()
          .add("speed", &O::speed, "c, the bound on |dK/dp| of the relativistic kinetic energy", checks::positive)
          .add("normalise_output", &O::normalise_output, "RMS-normalise the update per tensor").architecture()
          .add("hidden", &O::hidden, "width of the net", checks::positive).architecture()
          .add("time_features", &O::time_features, "11 time features tanh(t/s - 1) as net inputs").architecture()
          .add("weight_decay", &O::weight_decay, "decoupled weight decay lambda", checks::non_negative)
          .add("kernel", &O::kernel, "evaluation as fused loops or as tensor operations (autograd always takes the "
               "tensor operations)", checks::one_of({"fused", "tensor"}))
          .add("out_mul", &O::out_mul, "output scale: theta <- theta + out_mul * (alpha u - lambda theta)",
               checks::finite)
          .add("seed", &O::seed, "seed of the weight initialisation", checks::non_negative)
          .add("dtype", &O::dtype, "weight dtype: float32 | float64", check_weight_dtype)
          .add("weights", &O::weights, "weight file this optimizer was loaded from").omit_when_empty()
          .rule([](const std::string& owner, const O& o) {
            const std::size_t n = lift::parse_decays(owner + ".decays", o.decays).size();
            HAMLET_CHECK(static_cast<int64_t>(n) == o.k, owner, ".decays lists ", n, " decays but ", owner, ".k is ",
                         o.k, " (one decay per momentum)");
          });
  return s;
}

PhnnLift::PhnnLift(PhnnLiftOptions options) : ConfiguredLearnedOptimizer(std::move(options)) {
  const int64_t k = options_.k, w = options_.hidden, f = options_.features();
  const auto dtype = weights_.dtype();
  const auto f64 = at::TensorOptions().dtype(at::kDouble);
  at::Generator gen = make_generator(static_cast<uint64_t>(options_.seed));
  std::vector<double> log_rho;
  for (double beta : lift::parse_decays("phnn-lift.decays", options_.decays)) log_rho.push_back(std::log(-std::log(beta)));
  weights_.add("log_rho", at::tensor(log_rho, f64));
  const double bound = 1.0 / std::sqrt(static_cast<double>(f));
  weights_.add("N.0.weight", uniform_weight({w, f}, bound, gen, dtype));
  weights_.add("N.0.bias", uniform_weight({w}, bound, gen, dtype));
  // A zero output layer makes the initial optimizer the hand-designed one (N = 0); its gradient is not zero.
  weights_.add("N.2.weight", at::zeros({k + 1, w}, f64));
  weights_.add("N.2.bias", at::zeros({k + 1}, f64));
  weights_.add("log_step", at::zeros({1}, f64));
}

double PhnnLift::flops_per_coordinate() const {
  const double k = static_cast<double>(options_.k), w = static_cast<double>(options_.hidden);
  return 2 * w * (k + 2) + 2 * w * (k + 1) + 2 * w + 25 * k + 2 * (k + 2) + 28;
}

double PhnnLift::activations_per_coordinate() const { return static_cast<double>(options_.hidden); }

std::string PhnnLift::architecture() const {
  return detail::concat("phnn-lift k=", options_.k, " hidden=", options_.hidden, " mass=", options_.mass, " kinetic=", options_.kinetic,
                        " time_features=", options_.time_features ? "true" : "false",
                        " normalise_output=", options_.normalise_output ? "true" : "false");
}

at::Tensor PhnnLift::decays(const at::TensorOptions& opts) const { return (-weights_[0].to(opts).exp()).exp(); }

std::pair<at::Tensor, at::Tensor> PhnnLift::net(const at::Tensor& z, const at::TensorOptions& opts) const {
  const TensorList w = weights_.on(opts);
  const at::Tensor out = at::linear(at::linear(z, w[1], w[2]).tanh(), w[3], w[4]);
  const int64_t k = options_.k;
  return {out.narrow(-1, 0, k) + 1.0 / static_cast<double>(k), out.select(-1, k)};
}

optim::OptimizerState PhnnLift::init(const TensorList& params) const {
  const auto dtype = compute_dtype(weights_.dtype(), params);
  optim::OptimizerState state;
  for (const auto& x : params) {
    std::vector<int64_t> shape(x.sizes().begin(), x.sizes().end());
    state.slots["v"].push_back(at::zeros(shape, x.options().dtype(dtype)));
    shape.push_back(options_.k);
    state.slots["p"].push_back(at::zeros(shape, x.options().dtype(dtype)));
  }
  return state;
}

optim::StepResult PhnnLift::update(const TensorList& params, const TensorList& grads, const at::Tensor&,
                                   const optim::OptimizerState& state) const {
  check_phnn_lift_inputs(params, grads, state);
  const int64_t k = options_.k;
  const auto opts = params[0].options().dtype(compute_dtype(weights_.dtype(), params));
  if (options_.kernel == "fused" && !weights_.any_requires_grad() &&
      phnn_lift_fused_applies(params, grads, state, weights_.values(), opts)) {
    return phnn_lift_update_fused(options_, weights_.values(), params, grads, state, opts);
  }
  const auto kinetic = options_.kinetic_kind();
  const double speed = options_.speed, beta_v = options_.second_moment_decay;
  const bool constant_mass = options_.mass == "constant";
  const TensorList w = weights_.on(opts);
  const at::Tensor rho = w[0].exp();

  // Per tensor, as blocks [B, N] and [B, N, k]: metric, energy bookkeeping, ports, features.
  const std::size_t n = params.size();
  TensorList g(n), m(n), p_next(n), v_next(n), z(n);
  std::vector<int64_t> sizes;
  at::Tensor h_before, dissipated, supplied;
  const auto add = [](at::Tensor& sum, const at::Tensor& x) { sum = sum.defined() ? sum + x : x; };
  for (std::size_t i = 0; i < n; ++i) {
    const int64_t b = params[i].size(0);
    g[i] = grads[i].to(opts).reshape({b, -1});
    const at::Tensor p = state.slots.at("p")[i].to(opts).reshape({b, -1, k});
    v_next[i] = beta_v * state.slots.at("v")[i].to(opts).reshape({b, -1}) + (1.0 - beta_v) * g[i].square();
    m[i] = constant_mass ? at::ones_like(v_next[i]) : v_next[i].sqrt() + options_.eps;
    {
      at::NoGradGuard no_grad;  // diagnostics only
      const at::Tensor pd = p.detach(), md = m[i].detach(), rd = rho.detach(), gd = g[i].detach();
      const at::Tensor grad_k = lift::kinetic_grad(pd, md, kinetic, speed);
      add(h_before, lift::kinetic_energy(pd, md, kinetic, speed).sum(1));
      add(dissipated, (lift::dissipation(pd, md, rd, kinetic, speed) * grad_k.square()).sum({1, 2}));
      add(supplied, (grad_k * rd * gd.unsqueeze(-1)).sum({1, 2}));
    }
    p_next[i] = lift::ports(p, rho, g[i], 1.0);
    const at::Tensor inv_m = m[i].reciprocal();
    z[i] = at::cat({g[i].unsqueeze(-1), p_next[i] * inv_m.unsqueeze(-1), (g[i] * inv_m).unsqueeze(-1)}, -1);
    z[i] = rms_normalise(z[i], 1);
    sizes.push_back(g[i].size(1));
  }
  // One pass of the net over every coordinate of every tensor.
  at::Tensor features = n == 1 ? z[0] : at::cat(z, 1);
  if (options_.time_features) {
    const at::Tensor time = mlp_lopt_time_features(state.step).to(opts);
    features = at::cat({features, time.expand({features.size(0), features.size(1), kMlpLoptTimeFeatures})}, -1);
  }
  const auto [coupling, direct] = net(features, opts);
  const TensorList couplings = coupling.split_with_sizes(sizes, 1), directs = direct.split_with_sizes(sizes, 1);

  optim::StepResult result;
  result.state.step = state.step + 1;
  const at::Tensor alpha = w[5].exp();
  at::Tensor h_after;
  for (std::size_t i = 0; i < n; ++i) {
    const at::Tensor q_dot = lift::velocity(p_next[i], m[i], couplings[i], directs[i], g[i], kinetic, speed);
    const at::Tensor u = options_.normalise_output ? rms_normalise(q_dot, 1) : q_dot;
    const at::Tensor theta = params[i].to(opts).reshape(g[i].sizes());
    at::Tensor delta = alpha * u;
    if (options_.weight_decay != 0.0) delta = delta - options_.weight_decay * theta;
    result.params.push_back(params[i] + (options_.out_mul * delta).reshape(params[i].sizes()).to(params[i].dtype()));
    std::vector<int64_t> shape(params[i].sizes().begin(), params[i].sizes().end());
    result.state.slots["v"].push_back(v_next[i].reshape(shape));
    shape.push_back(k);
    result.state.slots["p"].push_back(p_next[i].reshape(shape));
    at::NoGradGuard no_grad;
    add(h_after, lift::kinetic_energy(p_next[i].detach(), m[i].detach(), kinetic, speed).sum(1));
  }
  result.diagnostics["H_before"] = h_before;
  result.diagnostics["H_after"] = h_after;
  result.diagnostics["dissipated_power"] = dissipated;
  result.diagnostics["supplied_power"] = supplied;
  return result;
}

}  // namespace hamlet::learned
