#include "hamlet/learned/phnn.hpp"

#include <ATen/core/grad_mode.h>
#include <torch/csrc/autograd/autograd.h>

#include <cmath>
#include <tuple>

#include "hamlet/core/error.hpp"
#include "hamlet/core/seed.hpp"
#include "hamlet/learned/fast_tanh.hpp"
#include "hamlet/learned/mlp_lopt.hpp"
#include "hamlet/learned/mlp_lopt_update_kernel.hpp"
#include "hamlet/learned/phnn_kernel.hpp"
#include "hamlet/learned/preprocess.hpp"

namespace hamlet::learned {
namespace ph {
namespace {

// A distinct autograd node standing for q. A derivative taken with respect to it only follows paths that start at
// this evaluation, which is what a partial derivative needs when p itself was computed from q (the second half
// of a substep uses p' = p + h ṗ(q, p)). With create_graph the node stays connected to q's history through
// clone(), so meta-gradients still reach everything upstream of q.
at::Tensor probe(const at::Tensor& q, bool create_graph) {
  if (create_graph && q.requires_grad()) return q.clone();
  return q.detach().requires_grad_(true);
}

// Gradients of `output` with respect to `inputs`, zero where the output does not depend on an input (a constant
// potential, say) rather than an error.
TensorList partials(const at::Tensor& output, const TensorList& inputs, bool create_graph) {
  TensorList out;
  if (!output.requires_grad()) {
    for (const auto& x : inputs) out.push_back(at::zeros_like(x));
    return out;
  }
  out = torch::autograd::grad({output}, inputs, /*grad_outputs=*/{}, /*retain_graph=*/create_graph, create_graph,
                              /*allow_unused=*/true);
  for (std::size_t i = 0; i < out.size(); ++i) {
    if (!out[i].defined()) out[i] = at::zeros_like(inputs[i]);
  }
  return out;
}

at::Tensor kinetic(const at::Tensor& p, const at::Tensor& b) { return 0.5 * (p * b).sum(-1); }

// Per-row products of 2×2 … 4×4 matrices: on the GPU batched GEMM is several times slower than a broadcast
// multiply-and-sum for matrices this small (measured on an H100 with 1.6M rows: 1.5 vs 0.3 ms for M x, 4.5 vs
// 1.0 ms for L Lᵀ); on the CPU the GEMM path is the faster one.
bool broadcast_products(const at::Tensor& t) { return t.is_cuda(); }

}  // namespace

at::Tensor cholesky_from_raw(const at::Tensor& raw, int64_t n, bool softplus_diag) {
  HAMLET_CHECK(n >= 1 && raw.dim() >= 1 && raw.size(-1) == n * (n + 1) / 2, "Cholesky factor of size ", n, " needs ",
               n * (n + 1) / 2, " raw entries, got shape ", raw.sizes());
  at::Tensor diag = raw.narrow(-1, 0, n);
  if (softplus_diag) diag = at::softplus(diag);
  // Gathering from [0 | diagonal | strictly-lower] builds the factor without in-place writes, so it stays
  // differentiable (and twice differentiable) in the raw entries.
  const at::Tensor extended =
      at::cat({at::zeros_like(raw.narrow(-1, 0, 1)), diag, raw.narrow(-1, n, n * (n - 1) / 2)}, -1);
  std::vector<int64_t> index(static_cast<std::size_t>(n * n), 0);
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j <= i; ++j) {
      index[static_cast<std::size_t>(i * n + j)] = i == j ? 1 + i : 1 + n + i * (i - 1) / 2 + j;
    }
  }
  const at::Tensor idx = at::tensor(index, at::TensorOptions().dtype(at::kLong)).to(raw.device());
  std::vector<int64_t> shape(raw.sizes().begin(), raw.sizes().end() - 1);
  shape.push_back(n);
  shape.push_back(n);
  return extended.index_select(-1, idx).reshape(shape);
}

namespace {

at::Tensor psd_from_factor(const at::Tensor& l, int64_t n, double eps) {
  const at::Tensor llt = l.dim() > 2 && broadcast_products(l) ? (l.unsqueeze(-2) * l.unsqueeze(-3)).sum(-1)
                                                              : at::matmul(l, l.transpose(-1, -2));
  return llt + eps * at::eye(n, l.options());
}

// ∂(½‖Lᵀp‖²)/∂raw given the factor L built from raw: ∂/∂L_ij = p_i y_j with y = Lᵀp, then the chain rule through
// the softplus of the diagonal.
at::Tensor kinetic_grad_from_factor(const at::Tensor& raw, const at::Tensor& l, const at::Tensor& p, int64_t n,
                                    bool softplus_diag) {
  const at::Tensor y = apply_rows(l.transpose(-1, -2), p);
  at::Tensor diag = p * y;
  if (softplus_diag) diag = diag * at::sigmoid(raw.narrow(-1, 0, n));
  if (n == 1) return diag;
  const at::Tensor outer = (p.unsqueeze(-1) * y.unsqueeze(-2)).reshape({p.size(0), n * n});
  std::vector<int64_t> lower;
  for (int64_t i = 1; i < n; ++i) {
    for (int64_t j = 0; j < i; ++j) lower.push_back(i * n + j);
  }
  const at::Tensor idx = at::tensor(lower, at::TensorOptions().dtype(at::kLong)).to(raw.device());
  return at::cat({diag, outer.index_select(-1, idx)}, -1);
}

}  // namespace

at::Tensor psd_from_raw(const at::Tensor& raw, int64_t n, bool softplus_diag, double eps) {
  return psd_from_factor(cholesky_from_raw(raw, n, softplus_diag), n, eps);
}

namespace {

// ∂(w · (W2 s + b2))/∂x for the hidden activations s = tanh(W1 x + b1) already computed.
at::Tensor tanh_layer_input_grad(const at::Tensor& s, const at::Tensor& w1, const at::Tensor& w2,
                                 const at::Tensor& cotangent) {
  return at::matmul((1 - s * s) * at::matmul(cotangent, w2), w1);
}

}  // namespace

at::Tensor tanh_mlp_input_grad(const at::Tensor& w1, const at::Tensor& b1, const at::Tensor& w2,
                               const at::Tensor& cotangent, const at::Tensor& x) {
  return tanh_layer_input_grad(fast_tanh(at::linear(x, w1, b1)), w1, w2, cotangent);
}

at::Tensor kinetic_grad_raw(const at::Tensor& raw, const at::Tensor& p, int64_t n, bool softplus_diag) {
  return kinetic_grad_from_factor(raw, cholesky_from_raw(raw, n, softplus_diag), p, n, softplus_diag);
}

at::Tensor apply_rows(const at::Tensor& m, const at::Tensor& x) {
  if (m.dim() == 2) return at::matmul(x, m.t());
  if (broadcast_products(m)) return (m * x.unsqueeze(-2)).sum(-1);
  return at::matmul(m, x.unsqueeze(-1)).squeeze(-1);
}

Field vector_field(const at::Tensor& a, const at::Tensor& b, const at::Tensor& dissipation, const at::Tensor& forcing) {
  const int64_t d = a.size(-1);
  const at::Tensor dx = apply_rows(dissipation, at::cat({a, b}, -1));
  Field f;
  f.q_dot = b - dx.narrow(-1, 0, d);
  f.p_dot = -a - dx.narrow(-1, d, d);
  if (forcing.defined()) f.p_dot = f.p_dot + forcing;
  return f;
}

at::Tensor hamiltonian(const Model& model, const at::Tensor& q, const at::Tensor& p) {
  return model.potential(q) + kinetic(p, apply_rows(model.inv_mass(q), p));
}

Gradients energy_gradients(const Model& model, const at::Tensor& q, const at::Tensor& p, bool create_graph) {
  Gradients g;
  if (model.closed_form()) {
    g.a = model.potential_grad(q);
    if (model.mass_depends_on_q) {
      const MassAt m = model.mass_at(q);
      g.b = apply_rows(m.inv_mass, p);
      g.a = g.a + m.kinetic_grad(p);
    } else {
      g.b = apply_rows(model.inv_mass(q), p);
    }
    if (!create_graph) {
      g.a = g.a.detach();
      g.b = g.b.detach();
    }
    return g;
  }
  at::AutoGradMode enable(true);
  const at::Tensor q_v = probe(q, create_graph);
  const at::Tensor v = model.potential(q_v);
  if (model.mass_depends_on_q) {
    const at::Tensor q_m = probe(q, create_graph);
    g.b = apply_rows(model.inv_mass(q_m), p);
    const TensorList d = partials(v.sum() + kinetic(p, g.b).sum(), {q_v, q_m}, create_graph);
    g.a = d[0] + d[1];
  } else {
    g.b = apply_rows(model.inv_mass(q), p);
    g.a = partials(v.sum(), {q_v}, create_graph)[0];
  }
  if (!create_graph) {
    g.a = g.a.detach();
    g.b = g.b.detach();
  }
  return g;
}

Step symplectic_euler(const Model& model, const at::Tensor& q0, const at::Tensor& p0, double h, int64_t substeps,
                      bool create_graph) {
  HAMLET_CHECK(substeps >= 1, "symplectic Euler needs at least one substep, got ", substeps);
  at::Tensor q = q0, p = p0, q_dot_sum;
  Step out;
  for (int64_t k = 0; k < substeps; ++k) {
    // Everything that depends on q alone is evaluated once per substep and shared by the p and q half-steps.
    const at::Tensor dissipation = model.dissipation(q);
    const at::Tensor forcing = model.forcing ? model.forcing(q) : at::Tensor();
    at::Tensor grad_v, v, a, b, inv_mass;
    MassAt mass;
    if (model.closed_form()) {
      if (k == 0 && model.potential_and_grad) {
        // The diagnostics need V(q) too: one network evaluation gives both.
        std::tie(v, grad_v) = model.potential_and_grad(q);
        v = v.detach();
      } else {
        grad_v = model.potential_grad(q);
      }
      if (model.mass_depends_on_q) {
        mass = model.mass_at(q);
        inv_mass = mass.inv_mass;
        b = apply_rows(inv_mass, p);
        a = grad_v + mass.kinetic_grad(p);
      } else {
        inv_mass = model.inv_mass(q);
        b = apply_rows(inv_mass, p);
        a = grad_v;
      }
      if (k == 0 && !v.defined()) {
        at::NoGradGuard no_grad;
        v = model.potential(q.detach());
      }
    } else {
      at::AutoGradMode enable(true);
      const at::Tensor q_v = probe(q, create_graph);
      v = model.potential(q_v);
      if (model.mass_depends_on_q) {
        const at::Tensor q_m = probe(q, create_graph);
        b = apply_rows(model.inv_mass(q_m), p);
        const TensorList d = partials(v.sum() + kinetic(p, b).sum(), {q_v, q_m}, create_graph);
        grad_v = d[0];
        a = d[0] + d[1];
      } else {
        inv_mass = model.inv_mass(q);
        b = apply_rows(inv_mass, p);
        grad_v = partials(v.sum(), {q_v}, create_graph)[0];
        a = grad_v;
      }
      if (!create_graph) b = b.detach();
    }
    if (k == 0) {
      // Diagnostics only: no graph is recorded for them.
      at::NoGradGuard no_grad;
      const at::Tensor ad = a.detach(), bd = b.detach(), x = at::cat({ad, bd}, -1);
      out.energy_before = v.detach() + kinetic(p.detach(), bd);
      out.dissipated_power = (x * apply_rows(dissipation.detach(), x)).sum(-1);
      out.supplied_power = forcing.defined() ? (bd * forcing.detach()).sum(-1) : at::zeros_like(out.energy_before);
    }
    p = p + h * vector_field(a, b, dissipation, forcing).p_dot;

    // q̇ at (q, p'): ∇V(q) is unchanged; only the kinetic part of ∂H/∂q and b move with p.
    if (model.closed_form()) {
      b = apply_rows(inv_mass, p);
      a = model.mass_depends_on_q ? grad_v + mass.kinetic_grad(p) : grad_v;
    } else if (model.mass_depends_on_q) {
      at::AutoGradMode enable(true);
      const at::Tensor q_m = probe(q, create_graph);
      b = apply_rows(model.inv_mass(q_m), p);
      a = grad_v + partials(kinetic(p, b).sum(), {q_m}, create_graph)[0];
      if (!create_graph) b = b.detach();
    } else {
      b = apply_rows(inv_mass, p);
    }
    const at::Tensor q_dot = vector_field(a, b, dissipation, forcing).q_dot;
    q = q + h * q_dot;
    q_dot_sum = q_dot_sum.defined() ? q_dot_sum + q_dot : q_dot;
  }
  // The mean of the substep velocities equals (q̂ − q)/(K h) without the cancellation of that difference.
  out.q_dot = substeps == 1 ? q_dot_sum : q_dot_sum / static_cast<double>(substeps);
  out.p_next = p;
  out.q_hat = q;
  if (!create_graph) {
    out.q_dot = out.q_dot.detach();
    out.p_next = out.p_next.detach();
    out.q_hat = out.q_hat.detach();
  }
  return out;
}

}  // namespace ph

const OptionSpec<PhnnOptions>& PhnnOptions::spec() {
  using O = PhnnOptions;
  const auto state_or_constant = checks::one_of({"state", "constant"});
  static const auto s =
      OptionSpec<O>("phnn")
          .add("preprocess", &O::preprocess, "preprocessing P on the gradient (d = 2)").architecture()
          .add("hidden", &O::hidden, "width of every net", checks::positive).architecture()
          .add("mass", &O::mass, "M^-1 from a net of q (state) or a free factor (constant)", state_or_constant)
          .architecture()
          .add("dissipation", &O::dissipation, "D from a net of q (state) or a free factor (constant)",
               state_or_constant)
          .architecture()
          .add("d_softplus", &O::d_softplus, "softplus on the diagonal of L_D").architecture()
          .add("eps_m", &O::eps_m, "epsilon_M added to the mass", checks::non_negative)
          .add("eps_d", &O::eps_d, "epsilon_D added to the dissipation", checks::non_negative)
          .add("h", &O::h, "substep size", checks::positive)
          .add("substeps", &O::substeps, "substeps K per optimizee step", checks::positive)
          .add("out_mul", &O::out_mul, "output scale: theta <- theta + out_mul * u", checks::finite)
          .add("init_wu", &O::init_wu, "initial readout W_u: default or sgd (u = -g)", checks::one_of({"default", "sgd"}))
          .add("derivatives", &O::derivatives, "how dH/dq is computed (same values)",
               checks::one_of({"closed-form", "autograd"}))
          .add("kernel", &O::kernel, "fused loop (and meta-training node) or the tensor expressions", checks::one_of({"fused", "tensor"}))
          .add("inputs", &O::inputs, "what q reads: the gradient or the 39 mlp-lopt features",
               checks::one_of({"gradient", "lopt-features"}))
          .architecture()
          .add("readout", &O::readout, "update readout: linear or exp (u = delta * exp(exp_mult * mu))",
               checks::one_of({"linear", "exp"}))
          .architecture()
          .add("exp_mult", &O::exp_mult, "exp readout scale", checks::finite)
          .add("seed", &O::seed, "seed of the weight initialisation", checks::non_negative)
          .add("dtype", &O::dtype, "weight dtype: float32 | float64", check_weight_dtype)
          .add("weights", &O::weights, "weight file this optimizer was loaded from").omit_when_empty()
          .rule([](const std::string& owner, const O& o) {
            HAMLET_CHECK(!(o.lopt_features() && o.preprocess), owner,
                         ".preprocess must be false with inputs=lopt-features (q is the normalised gradient)");
          });
  return s;
}

int64_t PhnnOptions::context_dim() const { return lopt_features() ? kMlpLoptFeatures + kMlpLoptTimeFeatures : 0; }

PhnnOptions phnn_features_defaults() {
  PhnnOptions o;
  o.inputs = "lopt-features";
  o.readout = "exp";
  o.mass = "constant";
  return o;
}

Phnn::Phnn(PhnnOptions options) : ConfiguredLearnedOptimizer(std::move(options)) {
  const int64_t d = options_.dim(), w = options_.hidden;
  const int64_t n_mass = d * (d + 1) / 2, n_diss = 2 * d * (2 * d + 1) / 2;
  at::Generator gen = make_generator(static_cast<uint64_t>(options_.seed));
  const auto dtype = weights_.dtype();
  const auto bound = [](int64_t fan_in) { return 1.0 / std::sqrt(static_cast<double>(fan_in)); };
  const auto mlp = [&](const std::string& prefix, int64_t out, int64_t in) {
    const std::size_t first = weights_.add(prefix + ".0.weight", uniform_weight({w, in}, bound(in), gen, dtype));
    weights_.add(prefix + ".0.bias", uniform_weight({w}, bound(in), gen, dtype));
    weights_.add(prefix + ".2.weight", uniform_weight({out, w}, bound(w), gen, dtype));
    weights_.add(prefix + ".2.bias", uniform_weight({out}, bound(w), gen, dtype));
    return first;
  };
  const int64_t with_context = d + options_.context_dim();  // D and G read [q | z]
  v_ = mlp("V", 1, d);
  g_ = mlp("G", d, with_context);
  m_ = options_.mass == "state" ? mlp("M", n_mass, d)
                                : weights_.add("M.raw", uniform_weight({n_mass}, bound(w), gen, dtype));
  d_ = options_.dissipation == "state" ? mlp("D", n_diss, with_context)
                                       : weights_.add("D.raw", uniform_weight({n_diss}, bound(w), gen, dtype));
  const int64_t outputs = options_.readout == "exp" ? 2 : 1;  // [δ, μ] or u
  at::Tensor wu = uniform_weight({outputs, 2 * d}, bound(2 * d), gen, dtype);
  if (options_.init_wu == "sgd") {
    // u = −g (d = 1) or −sign g (d = 2) at initialisation: the last input column is the gradient feature's
    // sign (or the raw gradient). With the exp readout μ starts at 0.
    wu = at::zeros({outputs, 2 * d}, at::TensorOptions().dtype(dtype));
    wu.index_put_({0, 2 * d - 1}, -1.0);
  }
  wu_ = weights_.add("W_u.weight", wu);
}

std::string Phnn::architecture() const {
  // Files written before the inputs/readout options have the plain string; it still names a gradient/linear phnn.
  std::string extra;
  if (options_.lopt_features() || options_.readout != "linear") {
    extra = detail::concat(" inputs=", options_.inputs, " readout=", options_.readout);
  }
  return detail::concat("phnn d=", options_.dim(), " hidden=", options_.hidden, " mass=", options_.mass,
                        " dissipation=", options_.dissipation, " d_softplus=", options_.d_softplus ? "true" : "false",
                        extra);
}

at::Tensor Phnn::features(const at::Tensor& g) const {
  return options_.preprocess ? preprocess(g, /*differentiable=*/true) : g.unsqueeze(-1);
}

ph::Model Phnn::model(const at::TensorOptions& options, const at::Tensor& context) const {
  if (!options_.lopt_features()) return model(options, at::Tensor(), at::Tensor());
  HAMLET_CHECK(context.defined() && context.dim() == 2 && context.size(1) == options_.context_dim(),
               "phnn-features: the model needs the context z [R, ", options_.context_dim(), "]");
  return model(options, context.narrow(1, 0, kMlpLoptFeatures),
               context.narrow(1, kMlpLoptFeatures, kMlpLoptTimeFeatures));
}

std::pair<at::Tensor, at::Tensor> Phnn::context_layer(const TensorList& w, const at::TensorOptions& options,
                                                      const at::Tensor& time) const {
  const int64_t d = options_.dim(), f = kMlpLoptFeatures, t = kMlpLoptTimeFeatures;
  TensorList w_rows{w[g_].narrow(1, d, f)}, w_time{w[g_].narrow(1, d + f, t)}, bias{w[g_ + 1]};
  if (options_.dissipation == "state") {
    w_rows.push_back(w[d_].narrow(1, d, f));
    w_time.push_back(w[d_].narrow(1, d + f, t));
    bias.push_back(w[d_ + 1]);
  }
  return {at::cat(w_rows, 0), at::linear(time.to(options), at::cat(w_time, 0), at::cat(bias, 0))};
}

std::pair<at::Tensor, at::Tensor> Phnn::context_biases(const TensorList& w, const at::TensorOptions& options,
                                                       const at::Tensor& rows, const at::Tensor& time) const {
  const int64_t hidden = options_.hidden;
  const auto [weight, bias] = context_layer(w, options, time);
  const at::Tensor c = at::linear(rows.to(options), weight) + bias;
  return {c.narrow(1, 0, hidden), options_.dissipation == "state" ? c.narrow(1, hidden, hidden) : at::Tensor()};
}

bool Phnn::uses_fused_kernel(const at::Tensor& q, const at::Tensor& p) const {
  if (options_.kernel != "fused" || options_.derivatives != "closed-form" || !q.device().is_cpu() ||
      (q.scalar_type() != at::kFloat && q.scalar_type() != at::kDouble)) {
    return false;
  }
  if (!weights_.any_requires_grad() && !q.requires_grad() && !p.requires_grad()) return true;
  // Something may be differentiated: the kernel's autograd node covers K = 1 with a state dissipation (either mass).
  return options_.substeps == 1 && options_.dissipation == "state";
}

bool Phnn::uses_fused_update(const TensorList& params, const TensorList& grads,
                             const optim::OptimizerState& state) const {
  if (options_.kernel != "fused" || options_.derivatives != "closed-form" || weights_.any_requires_grad() ||
      params.empty() || grads.size() != params.size()) {
    return false;
  }
  const auto slot = state.slots.find("p");
  if (slot == state.slots.end() || slot->second.size() != params.size()) return false;
  const TensorList& momenta = slot->second;
  // The parameters' dtype must be the step's (compute_dtype), so that θ' needs no conversion.
  const auto dtype = compute_dtype(weights_.dtype(), params);
  if (dtype != at::kFloat && dtype != at::kDouble) return false;
  if (options_.lopt_features()) {
    // mlp-lopt's fused feature passes: per-problem rank ≤ 2, every slot present and none requiring grad.
    for (const char* name : {"m", "v", "fac"}) {
      const auto it = state.slots.find(name);
      if (it == state.slots.end() || it->second.size() != params.size()) return false;
    }
    const auto opts = params[0].options().dtype(dtype);
    if (!mlp_lopt_update_fused_applies(params, grads, {}, mlp_lopt_default_decays(opts), state, opts)) return false;
  }
  const int64_t d = options_.dim();
  for (std::size_t i = 0; i < params.size(); ++i) {
    for (const at::Tensor* t : {&params[i], &grads[i], &momenta[i]}) {
      if (!t->device().is_cpu() || t->scalar_type() != dtype || t->requires_grad()) return false;
    }
    if (params[i].dim() < 1 || grads[i].sizes() != params[i].sizes() || momenta[i].dim() != params[i].dim() + 1 ||
        momenta[i].size(-1) != d || momenta[i].numel() != params[i].numel() * d ||
        params[i].size(0) != params[0].size(0)) {
      return false;
    }
  }
  return true;
}

double Phnn::flops_per_coordinate() const {
  // Per coordinate, with d = dim(), w = hidden, n = d(2d + 1) raw D entries, m = d(d + 1)/2 raw M entries, a
  // multiply-add 2 and a tanh, exp, softplus or division 1 (Optimizer::flops_per_coordinate). Per substep:
  //   V and ∂V/∂q   first layer 2dw, tanh w, output 2w, (1 − s²) v_2 3w, V1ᵀ 2dw
  //   G             2dw + w + 2dw
  //   D (state)     2dw + w + 2nw, then L Lᵀ + εI: 2 per product term, (2d)(2d + 1)(2d + 2)/3 terms, + 2d
  //   M (state)     2dw + w + 2mw, softplus d, L Lᵀ + εI d(d + 1)(d + 2)/3 + d; ∂K/∂q twice: Lᵀp d(d + 1),
  //                 raw cotangent 2m + d (sigmoid), M2ᵀ 2mw, (1 − s²) 2w, M1ᵀ 2dw
  //   b = M⁻¹p and D [a; b] twice: 2 (2d² + 2(2d)²); p ← p + h(−a − Dx + G) 4d; q ← q + h q̇, q̇ 3d;
  //   diagnostics (first substep) 2d + 2d + 4d + 2.
  // After the flow V at q̂ (2dw + w + 2w), M there for a state mass, M⁻¹p 2d² and H 2d + 2; then P (3 per coordinate
  // with d = 2), the readout 4d per output (+ 3 for exp's exp(exp_mult μ) δ) and θ + out_mul · u 2.
  const double d = static_cast<double>(options_.dim()), w = static_cast<double>(options_.hidden);
  const double n = d * (2 * d + 1), m = d * (d + 1) / 2;
  const bool d_net = options_.dissipation == "state", m_net = options_.mass == "state";
  const double m_at = 2 * d * w + w + 2 * m * w + d + d * (d + 1) * (d + 2) / 3 + d;
  double substep = (4 * d * w + 6 * w) + (4 * d * w + w) + 2 * (2 * d * d + 2 * (2 * d) * (2 * d)) + 7 * d +
                   (8 * d + 2) / static_cast<double>(options_.substeps);
  if (d_net) substep += 2 * d * w + w + 2 * n * w + (2 * d) * (2 * d + 1) * (2 * d + 2) / 3 + 2 * d;
  if (m_net) substep += m_at + 2 * (d * (d + 1) + 2 * m + d + 2 * m * w + 2 * w + 2 * d * w);
  double after = 2 * d * w + 3 * w + 2 * d * d + 2 * d + 2;
  if (m_net) after += m_at;
  const double outputs = options_.readout == "exp" ? 2 : 1;
  const double readout = outputs * 4 * d + (outputs == 2 ? 3 : 0) + 2 + (options_.preprocess ? 3 : 0);
  // lopt-features: mlp-lopt's features as MlpLopt::flops_per_coordinate counts them (accumulators 16, features 15,
  // sums of squares 2 · 28), the context layer on the 28 normalised features for G's w and D's w first-layer units
  // (2 · 28 per unit; the 11 time features are a bias per step) and q = g / rms(g) 1.
  const double context = options_.lopt_features() ? 16 + 15 + 2.0 * kMlpLoptFeatures +
                                                        2.0 * kMlpLoptFeatures * w * (d_net ? 2 : 1) + 1
                                                  : 0.0;
  return static_cast<double>(options_.substeps) * substep + after + readout + context;
}

double Phnn::activations_per_coordinate() const {
  // As counted in flops_per_coordinate: a network evaluation is w tanh; the state mass adds d softplus where M is
  // evaluated and d σ in each of the substep's two ∂K/∂q.
  const double d = static_cast<double>(options_.dim()), w = static_cast<double>(options_.hidden);
  const bool d_net = options_.dissipation == "state", m_net = options_.mass == "state";
  const double substep = 2 * w + (d_net ? w : 0) + (m_net ? w + d + 2 * d : 0);
  const double after = w + (m_net ? w + d : 0);
  return static_cast<double>(options_.substeps) * substep + after + (options_.readout == "exp" ? 1 : 0) +
         (options_.preprocess ? 1 : 0);
}

ph::KernelWeights Phnn::kernel_weights(const at::TensorOptions& options, const at::Tensor& rows,
                                       const at::Tensor& time) const {
  const TensorList w = weights_.on(options);
  const int64_t d = options_.dim();
  at::Tensor c_g, c_d;
  if (options_.lopt_features() && rows.defined()) std::tie(c_g, c_d) = context_biases(w, options, rows, time);
  ph::KernelWeights k;
  k.v1 = w[v_];
  k.v1_bias = w[v_ + 1];
  k.v2 = w[v_ + 2];
  k.v2_bias = w[v_ + 3];
  k.g1 = w[g_].narrow(1, 0, d);
  k.g1_bias = c_g.defined() ? c_g : w[g_ + 1];
  k.g2 = w[g_ + 2];
  k.g2_bias = w[g_ + 3];
  if (options_.dissipation == "state") {
    k.d1 = w[d_].narrow(1, 0, d);
    k.d1_bias = c_d.defined() ? c_d : w[d_ + 1];
    k.d2 = w[d_ + 2];
    k.d2_bias = w[d_ + 3];
  } else {
    k.dissipation = ph::psd_from_raw(w[d_], 2 * d, options_.d_softplus, options_.eps_d);
  }
  if (options_.mass == "state") {
    k.m1 = w[m_];
    k.m1_bias = w[m_ + 1];
    k.m2 = w[m_ + 2];
    k.m2_bias = w[m_ + 3];
  } else {
    k.inv_mass = ph::psd_from_raw(w[m_], d, true, options_.eps_m);
  }
  k.eps_m = options_.eps_m;
  k.d_softplus = options_.d_softplus;
  k.eps_d = options_.eps_d;
  return k;
}

ph::Model Phnn::model(const at::TensorOptions& options, const at::Tensor& rows, const at::Tensor& time) const {
  HAMLET_CHECK(!options_.lopt_features() ||
                   (rows.defined() && time.defined() && rows.size(-1) == kMlpLoptFeatures &&
                    time.size(-1) == kMlpLoptTimeFeatures),
               "phnn-features: the model needs the context z [R, ", options_.context_dim(), "] (feature rows [R, ",
               kMlpLoptFeatures, "] and time features [1, ", kMlpLoptTimeFeatures, "])");
  const TensorList w = weights_.on(options);
  const int64_t d = options_.dim();
  const double eps_m = options_.eps_m, eps_d = options_.eps_d;
  const bool d_softplus = options_.d_softplus;
  const auto mlp = [w](std::size_t i, const at::Tensor& x) {
    return at::linear(fast_tanh(at::linear(x, w[i], w[i + 1])), w[i + 2], w[i + 3]);
  };
  ph::Model m;
  m.potential = [mlp, i = v_](const at::Tensor& q) { return mlp(i, q).squeeze(-1); };
  // D and G read [q | z] with z fixed during the step, so they stay functions of q for the integrator. Their first
  // layers split as W [q | z] + b = q W_qᵀ + c with c = rows W_rowsᵀ + time W_timeᵀ + b: c is one GEMM per step
  // for both networks, and each evaluation at a new q adds a rank-d product instead of re-reading 39 columns.
  const bool d_net = options_.dissipation == "state";
  at::Tensor c_g, c_d;
  if (options_.lopt_features()) std::tie(c_g, c_d) = context_biases(w, options, rows, time);
  const auto context_mlp = [w, mlp, d](std::size_t i, const at::Tensor& c, const at::Tensor& q) {
    if (!c.defined()) return mlp(i, q);
    return at::linear(fast_tanh(at::addmm(c, q, w[i].narrow(1, 0, d).t())), w[i + 2], w[i + 3]);
  };
  m.forcing = [context_mlp, c_g, i = g_](const at::Tensor& q) { return context_mlp(i, c_g, q); };
  if (options_.mass == "state") {
    m.inv_mass = [mlp, i = m_, d, eps_m](const at::Tensor& q) { return ph::psd_from_raw(mlp(i, q), d, true, eps_m); };
    m.mass_depends_on_q = true;
  } else {
    const at::Tensor inv_mass = ph::psd_from_raw(w[m_], d, true, eps_m);
    m.inv_mass = [inv_mass](const at::Tensor&) { return inv_mass; };
    m.mass_depends_on_q = false;
  }
  if (options_.derivatives == "closed-form") {
    m.potential_grad = [w, i = v_](const at::Tensor& q) {
      return ph::tanh_mlp_input_grad(w[i], w[i + 1], w[i + 2], w[i + 2].new_ones({1}), q);
    };
    m.potential_and_grad = [w, i = v_](const at::Tensor& q) {
      const at::Tensor s = fast_tanh(at::linear(q, w[i], w[i + 1]));
      return std::make_pair(at::linear(s, w[i + 2], w[i + 3]).squeeze(-1),
                            ph::tanh_layer_input_grad(s, w[i], w[i + 2], w[i + 2].new_ones({1})));
    };
    if (options_.mass == "state") {
      m.mass_at = [w, i = m_, d, eps_m](const at::Tensor& q) {
        const at::Tensor s = fast_tanh(at::linear(q, w[i], w[i + 1]));
        const at::Tensor raw = at::linear(s, w[i + 2], w[i + 3]);
        const at::Tensor l = ph::cholesky_from_raw(raw, d, true);
        ph::MassAt out;
        out.inv_mass = ph::psd_from_factor(l, d, eps_m);
        out.kinetic_grad = [w, i, s, raw, l, d](const at::Tensor& p) {
          return ph::tanh_layer_input_grad(s, w[i], w[i + 2], ph::kinetic_grad_from_factor(raw, l, p, d, true));
        };
        return out;
      };
    }
  }
  if (d_net) {
    m.dissipation = [context_mlp, c_d, i = d_, d, eps_d, d_softplus](const at::Tensor& q) {
      return ph::psd_from_raw(context_mlp(i, c_d, q), 2 * d, d_softplus, eps_d);
    };
  } else {
    const at::Tensor dissipation = ph::psd_from_raw(w[d_], 2 * d, d_softplus, eps_d);
    m.dissipation = [dissipation](const at::Tensor&) { return dissipation; };
  }
  return m;
}

optim::OptimizerState Phnn::init(const TensorList& params) const {
  const auto dtype = compute_dtype(weights_.dtype(), params);
  optim::OptimizerState state;
  for (const auto& p : params) {
    std::vector<int64_t> shape(p.sizes().begin(), p.sizes().end());
    shape.push_back(options_.dim());
    state.slots["p"].push_back(at::zeros(shape, p.options().dtype(dtype)));
  }
  if (options_.lopt_features()) mlp_lopt_init_slots(params, dtype, state);
  return state;
}

optim::StepResult Phnn::update(const TensorList& params, const TensorList& grads, const at::Tensor& loss,
                               const optim::OptimizerState& state) const {
  HAMLET_CHECK(grads.size() == params.size(), "phnn: ", grads.size(), " gradients for ", params.size(),
               " parameter tensors");
  const auto it = state.slots.find("p");
  HAMLET_CHECK(it != state.slots.end() && it->second.size() == params.size(),
               "phnn: state has no slot 'p' for every parameter tensor (call init() first)");
  const int64_t d = options_.dim();
  const auto opts = params[0].options().dtype(compute_dtype(weights_.dtype(), params));
  optim::StepResult result;
  const auto diagnose = [&](const at::Tensor& h_before, const at::Tensor& h_after, const at::Tensor& dissipated,
                            const at::Tensor& supplied) {
    const auto prev = state.scalars.find("H_after_flow");
    result.diagnostics["H_before"] = h_before;
    result.diagnostics["H_after_flow"] = h_after;
    result.diagnostics["H_reset_change"] =
        prev != state.scalars.end() ? h_before - prev->second.to(h_before.options()) : at::zeros_like(h_before);
    result.diagnostics["dissipated_power"] = dissipated;
    result.diagnostics["supplied_power"] = supplied;
    result.state.scalars["H_after_flow"] = h_after;
  };
  if (uses_fused_update(params, grads, state)) {
    // Evaluation: the whole update in one pass over the tensors, without the concatenated rows.
    ph::UpdateReadout readout;
    readout.w_u = weights_[wu_].to(opts);
    readout.exp = options_.readout == "exp";
    readout.exp_mult = options_.exp_mult;
    readout.out_mul = options_.out_mul;
    readout.preprocess = options_.preprocess;
    const ph::KernelWeights kw = kernel_weights(opts, at::Tensor(), at::Tensor());
    ph::UpdateResult k;
    if (options_.lopt_features()) {
      ph::FeatureInputs features;
      features.decays = mlp_lopt_default_decays(opts);
      const at::Tensor time = mlp_lopt_time_features(state.step).reshape({1, kMlpLoptTimeFeatures});
      std::tie(features.weight, features.bias) = context_layer(weights_.on(opts), opts, time);
      k = ph::fused_features_update(kw, features, readout, params, grads, it->second, state, options_.h,
                                    options_.substeps);
      result.state.slots["m"] = std::move(k.m);
      result.state.slots["v"] = std::move(k.v);
      result.state.slots["fac"] = std::move(k.fac);
    } else {
      k = ph::fused_update(kw, readout, params, grads, it->second, options_.h, options_.substeps);
    }
    result.params = std::move(k.params);
    result.state.step = state.step + 1;
    result.state.slots["p"] = std::move(k.p);
    diagnose(k.energy_before, k.energy_after, k.dissipated_power, k.supplied_power);
    return result;
  }
  at::Tensor q, feature_rows, time_row;
  if (options_.lopt_features()) {
    const at::Tensor rows = mlp_lopt_feature_rows(params, grads, mlp_lopt_default_decays(opts), state, result.state, opts,
                                                  options_.kernel == "fused" && !weights_.any_requires_grad());
    const at::Tensor time = mlp_lopt_time_features(state.step).to(opts);
    q = rows.narrow(1, 0, 1);
    feature_rows = rows;
    time_row = time.reshape({1, kMlpLoptTimeFeatures});
  } else {
    q = features(to_rows(grads).to(opts));
  }
  const at::Tensor p = to_rows(it->second, d).to(opts);
  // Graphs are only worth building when someone will differentiate: grad mode on and something upstream trainable.
  const bool create_graph =
      at::GradMode::is_enabled() && (weights_.any_requires_grad() || q.requires_grad() || p.requires_grad());
  ph::Step step;
  at::Tensor energy_after;
  if (uses_fused_kernel(q, p)) {
    // The same forward loop with or without the node, so that --recompute's two passes see the same values.
    const ph::KernelWeights kw = kernel_weights(opts, feature_rows, time_row);
    const ph::KernelStep k = create_graph ? ph::fused_step_trainable(kw, q, p, options_.h, options_.substeps)
                                          : ph::fused_step(kw, q, p, options_.h, options_.substeps);
    step.q_dot = k.q_dot;
    step.p_next = k.p_next;
    step.q_hat = k.q_hat;
    step.energy_before = k.energy_before;
    step.dissipated_power = k.dissipated_power;
    step.supplied_power = k.supplied_power;
    energy_after = k.energy_after;
  } else {
    const ph::Model model = this->model(opts, feature_rows, time_row);
    step = ph::symplectic_euler(model, q, p, options_.h, options_.substeps, create_graph);
    at::NoGradGuard no_grad;
    energy_after = ph::hamiltonian(model, step.q_hat.detach(), step.p_next.detach());
  }
  const at::Tensor out = at::linear(at::cat({step.q_dot, q}, -1), weights_[wu_].to(opts));
  const at::Tensor u = options_.readout == "exp"
                           ? out.select(1, 0) * (options_.exp_mult * out.select(1, 1)).exp()
                           : out.squeeze(-1);

  const TensorList deltas = from_rows(u * options_.out_mul, params);
  for (std::size_t i = 0; i < params.size(); ++i) result.params.push_back(params[i] + deltas[i].to(params[i].dtype()));
  result.state.step = state.step + 1;
  result.state.slots["p"] = from_rows(step.p_next, params, d);

  diagnose(per_problem_row_sum(step.energy_before, params), per_problem_row_sum(energy_after, params),
           per_problem_row_sum(step.dissipated_power, params), per_problem_row_sum(step.supplied_power, params));
  return result;
}

}  // namespace hamlet::learned
