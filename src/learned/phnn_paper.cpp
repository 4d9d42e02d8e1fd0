#include "hamlet/learned/phnn_paper.hpp"

#include <cmath>

#include <ATen/core/grad_mode.h>

#include "hamlet/core/error.hpp"
#include "hamlet/core/seed.hpp"
#include "hamlet/learned/preprocess.hpp"

namespace hamlet::learned {

const OptionSpec<PhnnPaperOptions>& PhnnPaperOptions::spec() {
  using O = PhnnPaperOptions;
  static const auto s =
      OptionSpec<O>("phnn-paper")
          .add("preprocess", &O::preprocess, "preprocessing P on g and s (d = 2)").architecture()
          .add("out_mul", &O::out_mul, "output scale: theta <- theta + out_mul * u", checks::finite)
          .add("norm", &O::norm, "per-tensor normalisation of the state s'")
          .add("state_grad", &O::state_grad, "differentiable P on the state (ablation)")
          .add("mass_factor", &O::mass_factor, "M^-1 = L L^T (code) or L^T L (paper text)", checks::one_of({"LLt", "LtL"}))
          .architecture()
          .add("keep_unused_L_bias", &O::keep_unused_L_bias, "count the unused bias of L (19/55 weights) or drop it")
          .architecture()
          .add("seed", &O::seed, "seed of the weight initialisation", checks::non_negative)
          .add("dtype", &O::dtype, "weight dtype: float32 | float64", check_weight_dtype)
          .add("kernel", &O::kernel, "evaluation as one fused loop or as the tensor expressions", checks::one_of({"fused", "tensor"}))
          .add("weights", &O::weights, "weight file this optimizer was loaded from").omit_when_empty();
  return s;
}

PhnnPaper::PhnnPaper(PhnnPaperOptions options) : ConfiguredLearnedOptimizer(std::move(options)) {
  const int64_t d = options_.dim();
  at::Generator gen = make_generator(static_cast<uint64_t>(options_.seed));
  const auto dtype = weights_.dtype();
  // Every Linear draws weight then bias from U(±1/√fan_in), in module order. The unused L bias is drawn even when
  // it is dropped, so both variants share all other initial values for a given seed.
  const auto linear = [&](const std::string& prefix, int64_t in, int64_t out, bool bias) {
    const double bound = 1.0 / std::sqrt(static_cast<double>(in));
    const std::size_t first = weights_.add(prefix + "weight", uniform_weight({out, in}, bound, gen, dtype));
    if (bias) weights_.add(prefix + "bias", uniform_weight({out}, bound, gen, dtype));
    return first;
  };
  g0w_ = linear("G.0.", d, d, true);
  linear("G.2.", d, d, true);
  v0w_ = linear("V.0.", d, d, true);
  linear("V.2.", d, d, true);
  dw_ = linear("D.", 2 * d, 2 * d, false);
  lw_ = linear("L.", d, d, false);
  const at::Tensor unused_bias = uniform_weight({d}, 1.0 / std::sqrt(static_cast<double>(d)), gen, dtype);
  if (options_.keep_unused_L_bias) weights_.add("L.bias", unused_bias);
  wu_ = linear("W_u.", 2 * d, 1, false);
  wsw_ = linear("W_s.", 2 * d, 1, true);
}

std::string PhnnPaper::architecture() const {
  return detail::concat("phnn-paper d=", options_.dim(), " mass_factor=", options_.mass_factor,
                        " L_bias=", options_.keep_unused_L_bias ? "true" : "false");
}

optim::OptimizerState PhnnPaper::init(const TensorList& params) const {
  const auto dtype = compute_dtype(weights_.dtype(), params);
  optim::OptimizerState state;
  for (const auto& p : params) state.slots["s"].push_back(at::zeros(p.sizes(), p.options().dtype(dtype)));
  return state;
}

PhnnPaper::Forward PhnnPaper::forward(const at::Tensor& g, const at::Tensor& s) const {
  const TensorList w = weights_.on(g.options());
  const int64_t d = options_.dim();
  Forward f;
  if (options_.preprocess) {
    f.q = preprocess(g, /*differentiable=*/true);
    f.sigma = preprocess(s, /*differentiable=*/options_.state_grad);
  } else {
    f.q = g.unsqueeze(-1);
    f.sigma = s.unsqueeze(-1);
  }
  const auto mlp = [&](std::size_t i, const at::Tensor& x) {
    return at::linear(at::relu(at::linear(x, w[i], w[i + 1])), w[i + 2], w[i + 3]);
  };
  f.G = mlp(g0w_, f.q);
  f.a = mlp(v0w_, f.q);
  const at::Tensor& lw = w[lw_];
  f.inv_mass = options_.mass_factor == "LLt" ? at::matmul(lw, lw.t()) : at::matmul(lw.t(), lw);
  const at::Tensor r = at::linear(at::cat({f.a, f.sigma}, -1), w[dw_]);
  f.r_q = r.narrow(-1, 0, d);
  f.r_p = r.narrow(-1, d, d);
  f.q_dot = f.sigma - f.r_q;
  f.q_ddot = at::matmul(f.G - f.a - f.r_p, f.inv_mass);
  f.u = at::linear(at::cat({f.q_dot, f.q}, -1), w[wu_]).squeeze(-1);
  f.s_next = at::linear(at::cat({f.q_dot, f.q_ddot}, -1), w[wsw_], w[wsw_ + 1]).squeeze(-1);
  return f;
}

bool PhnnPaper::uses_fused_kernel(const at::Tensor& g, const at::Tensor& s) const {
  if (options_.kernel != "fused" || !g.device().is_cpu() ||
      (g.scalar_type() != at::kFloat && g.scalar_type() != at::kDouble) || g.requires_grad() || s.requires_grad()) {
    return false;
  }
  // Trainable weights: the kernel's autograd node, where s' carries no meta-gradient (P(s) reads values only).
  return !weights_.any_requires_grad() || (options_.preprocess && !options_.state_grad);
}

bool PhnnPaper::uses_fused_update(const TensorList& params, const TensorList& grads, const TensorList& states) const {
  if (options_.kernel != "fused" || weights_.any_requires_grad() || params.empty()) return false;
  // The parameters' dtype must be the step's (compute_dtype), so that θ' needs no conversion.
  const auto dtype = compute_dtype(weights_.dtype(), params);
  if (dtype != at::kFloat && dtype != at::kDouble) return false;
  for (std::size_t i = 0; i < params.size(); ++i) {
    for (const at::Tensor* t : {&params[i], &grads[i], &states[i]}) {
      if (!t->device().is_cpu() || t->scalar_type() != dtype || t->requires_grad() || t->dim() < 1) return false;
    }
    if (grads[i].sizes() != params[i].sizes() || states[i].sizes() != params[i].sizes()) return false;
  }
  return true;
}

double PhnnPaper::flops_per_coordinate() const {
  const double d = static_cast<double>(options_.dim());
  const double features = options_.preprocess ? 2 * 3.0 : 0.0;  // P of g and s: add, log, divide each
  const double mlps = 2 * (2 * 2 * d * d);                        // G and V: two d × d layers each
  const double dissipation = 2 * (2 * d) * (2 * d);               // [r_q | r_p] = D_w [a | σ]
  const double dynamics = d + 2 * d + 2 * d * d;                  // q̇ = σ − r_q, G − a − r_p, q̈ = (…) M⁻¹
  const double readouts = 2 * (2 * 2 * d) + 2;                    // u, s', θ + out_mul · u
  const double norm = options_.norm ? 3.0 : 0.0;                  // s'², its sum, s' / ‖s'‖
  return features + mlps + dissipation + dynamics + readouts + norm;
}

double PhnnPaper::activations_per_coordinate() const { return options_.preprocess ? 2 : 0; }

PhnnPaperKernelWeights PhnnPaper::kernel_weights(const at::TensorOptions& options) const {
  const TensorList w = weights_.on(options);
  PhnnPaperKernelWeights k;
  k.g0_weight = w[g0w_];
  k.g0_bias = w[g0w_ + 1];
  k.g2_weight = w[g0w_ + 2];
  k.g2_bias = w[g0w_ + 3];
  k.v0_weight = w[v0w_];
  k.v0_bias = w[v0w_ + 1];
  k.v2_weight = w[v0w_ + 2];
  k.v2_bias = w[v0w_ + 3];
  k.d_weight = w[dw_];
  const at::Tensor& lw = w[lw_];
  k.inv_mass = options_.mass_factor == "LLt" ? at::matmul(lw, lw.t()) : at::matmul(lw.t(), lw);
  k.u_weight = w[wu_];
  k.s_weight = w[wsw_];
  k.s_bias = w[wsw_ + 1];
  k.preprocess = options_.preprocess;
  return k;
}

optim::StepResult PhnnPaper::update(const TensorList& params, const TensorList& grads, const at::Tensor& loss,
                                    const optim::OptimizerState& state) const {
  HAMLET_CHECK(grads.size() == params.size(), "phnn-paper: ", grads.size(), " gradients for ", params.size(),
               " parameter tensors");
  const auto it = state.slots.find("s");
  HAMLET_CHECK(it != state.slots.end() && it->second.size() == params.size(),
               "phnn-paper: state has no slot 's' for every parameter tensor (call init() first)");
  const auto opts = params[0].options().dtype(compute_dtype(weights_.dtype(), params));
  if (uses_fused_update(params, grads, it->second)) {
    // Evaluation: the whole update in one pass over the tensors, without the concatenated rows.
    PhnnPaperUpdate k = phnn_paper_fused_update(kernel_weights(opts), params, grads, it->second, options_.out_mul,
                                                options_.norm);
    optim::StepResult result;
    result.params = std::move(k.params);
    result.state.step = state.step + 1;
    result.state.slots["s"] = std::move(k.s);
    return result;
  }
  const at::Tensor g = to_rows(grads).to(opts), s = to_rows(it->second).to(opts);
  at::Tensor u, s_raw;
  if (uses_fused_kernel(g, s)) {
    // The same forward loop with or without the node, so that --recompute's two passes see the same values.
    const bool graph = at::GradMode::is_enabled() && weights_.any_requires_grad();
    const PhnnPaperKernelStep k = graph ? phnn_paper_fused_step_trainable(kernel_weights(opts), g, s)
                                        : phnn_paper_fused_step(kernel_weights(opts), g, s);
    u = k.u;
    s_raw = k.s_next;
  } else {
    const Forward f = forward(g, s);
    u = f.u;
    s_raw = f.s_next;
  }
  const at::Tensor s_next = options_.norm ? normalise_per_tensor(s_raw, params) : s_raw;

  optim::StepResult result;
  const TensorList deltas = from_rows(u * options_.out_mul, params);
  for (std::size_t i = 0; i < params.size(); ++i) result.params.push_back(params[i] + deltas[i].to(params[i].dtype()));
  result.state.step = state.step + 1;
  result.state.slots["s"] = from_rows(s_next, params);
  return result;
}

}  // namespace hamlet::learned
