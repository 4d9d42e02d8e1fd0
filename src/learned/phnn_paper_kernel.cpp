#include "hamlet/learned/phnn_paper_kernel.hpp"

#include <torch/csrc/autograd/custom_function.h>

#include <cmath>
#include <vector>

#include "hamlet/core/error.hpp"
#include "hamlet/learned/preprocess.hpp"

namespace hamlet::learned {
namespace {

constexpr int64_t kMaxDim = 2;

// P(x) of preprocess.hpp with its constants rounded to T as ATen rounds a scalar operand to the tensor's dtype.
template <typename T>
inline void preprocess_into(T x, T* out) {
  const T threshold = static_cast<T>(std::exp(-kPreprocessP));
  const T magnitude = std::fabs(x);
  if (magnitude >= threshold) {
    out[0] = std::log(magnitude + static_cast<T>(1e-8)) / static_cast<T>(kPreprocessP);
    out[1] = x > 0 ? T(1) : (x < 0 ? T(-1) : T(0));
  } else if (magnitude < threshold) {
    out[0] = T(-1);
    out[1] = x * static_cast<T>(std::exp(kPreprocessP));
  } else {  // NaN: where() takes the small branch (the comparison is false), and e^p · NaN is NaN
    out[0] = T(-1);
    out[1] = x;
  }
}

template <typename T>
struct Weights {
  std::vector<at::Tensor> hold;  // keeps the contiguous copies alive
  const T* take(const at::Tensor& t, at::ScalarType dtype) {
    hold.push_back(t.to(dtype).contiguous());
    return hold.back().data_ptr<T>();
  }
};

// y = W2 relu(W1 x + b1) + b2 for d × d layers.
template <typename T, int64_t d>
inline void relu_mlp(const T* w1, const T* b1, const T* w2, const T* b2, const T* x, T* y) {
  T hidden[kMaxDim];
  for (int64_t j = 0; j < d; ++j) {
    T z = b1[j];
    for (int64_t i = 0; i < d; ++i) z += w1[j * d + i] * x[i];
    hidden[j] = z > T(0) ? z : T(0);
  }
  for (int64_t j = 0; j < d; ++j) {
    T z = b2[j];
    for (int64_t i = 0; i < d; ++i) z += w2[j * d + i] * hidden[i];
    y[j] = z;
  }
}

// D = d as a compile-time constant, so that the d × d products unroll completely.
template <typename T, int64_t D>
PhnnPaperKernelStep run(const PhnnPaperKernelWeights& kw, const at::Tensor& g, const at::Tensor& s) {
  const auto dtype = g.scalar_type();
  constexpr int64_t d = D;
  const int64_t rows = g.size(0);
  const auto square = [](const at::Tensor& t, int64_t n) { return t.dim() == 2 && t.size(0) == n && t.size(1) == n; };
  HAMLET_CHECK(square(kw.g0_weight, d) && square(kw.g2_weight, d) && square(kw.v0_weight, d) &&
                   square(kw.v2_weight, d) && square(kw.d_weight, 2 * d) && square(kw.inv_mass, d) &&
                   kw.g0_bias.numel() == d && kw.g2_bias.numel() == d && kw.v0_bias.numel() == d &&
                   kw.v2_bias.numel() == d && kw.u_weight.numel() == 2 * d && kw.s_weight.numel() == 2 * d &&
                   kw.s_bias.numel() == 1,
               "phnn-paper kernel: weights do not fit d = ", d);
  Weights<T> w;
  const T *g0 = w.take(kw.g0_weight, dtype), *g0b = w.take(kw.g0_bias, dtype), *g2 = w.take(kw.g2_weight, dtype),
          *g2b = w.take(kw.g2_bias, dtype), *v0 = w.take(kw.v0_weight, dtype), *v0b = w.take(kw.v0_bias, dtype),
          *v2 = w.take(kw.v2_weight, dtype), *v2b = w.take(kw.v2_bias, dtype), *dw = w.take(kw.d_weight, dtype),
          *minv = w.take(kw.inv_mass, dtype), *wu = w.take(kw.u_weight, dtype), *ws = w.take(kw.s_weight, dtype);
  const T bs = static_cast<T>(kw.s_bias.reshape({}).item<double>());
  const at::Tensor gc = g.contiguous(), sc = s.to(dtype).contiguous();
  const T *gp = gc.data_ptr<T>(), *sp = sc.data_ptr<T>();
  PhnnPaperKernelStep out;
  out.u = at::empty({rows}, gc.options());
  out.s_next = at::empty({rows}, gc.options());
  T *up = out.u.data_ptr<T>(), *snp = out.s_next.data_ptr<T>();
  for (int64_t r = 0; r < rows; ++r) {
    T q[kMaxDim], sigma[kMaxDim], force[kMaxDim], a[kMaxDim], x[2 * kMaxDim], q_dot[kMaxDim], q_ddot[kMaxDim];
    if constexpr (D == 2) {
      preprocess_into(gp[r], q);
      preprocess_into(sp[r], sigma);
    } else {
      q[0] = gp[r];
      sigma[0] = sp[r];
    }
    relu_mlp<T, D>(g0, g0b, g2, g2b, q, force);
    relu_mlp<T, D>(v0, v0b, v2, v2b, q, a);
    for (int64_t i = 0; i < d; ++i) {
      x[i] = a[i];
      x[d + i] = sigma[i];
    }
    T rest[kMaxDim];  // G − a − r_p
    for (int64_t i = 0; i < 2 * d; ++i) {
      T z = 0;
      for (int64_t k = 0; k < 2 * d; ++k) z += dw[i * 2 * d + k] * x[k];
      if (i < d) {
        q_dot[i] = sigma[i] - z;
      } else {
        rest[i - d] = force[i - d] - a[i - d] - z;
      }
    }
    for (int64_t j = 0; j < d; ++j) {
      T z = 0;
      for (int64_t i = 0; i < d; ++i) z += rest[i] * minv[i * d + j];
      q_ddot[j] = z;
    }
    T u = 0, s_next = bs;
    for (int64_t i = 0; i < d; ++i) {
      u += wu[i] * q_dot[i] + wu[d + i] * q[i];
      s_next += ws[i] * q_dot[i] + ws[d + i] * q_ddot[i];
    }
    up[r] = u;
    snp[r] = s_next;
  }
  return out;
}

// The cotangents of V.0, V.2, D_w and W_u for a cotangent ū of u (phnn_paper_kernel.hpp), summed over the rows
// in double.
template <typename T, int64_t D>
std::vector<at::Tensor> run_backward(const PhnnPaperKernelWeights& kw, const at::Tensor& g, const at::Tensor& s,
                                     const at::Tensor& u_bar) {
  const auto dtype = g.scalar_type();
  constexpr int64_t d = D;
  const int64_t rows = g.size(0);
  Weights<T> w;
  const T *v0 = w.take(kw.v0_weight, dtype), *v0b = w.take(kw.v0_bias, dtype), *v2 = w.take(kw.v2_weight, dtype),
          *v2b = w.take(kw.v2_bias, dtype), *dw = w.take(kw.d_weight, dtype), *wu = w.take(kw.u_weight, dtype);
  const at::Tensor gc = g.contiguous(), sc = s.to(dtype).contiguous(), ub = u_bar.to(dtype).contiguous();
  const T *gp = gc.data_ptr<T>(), *sp = sc.data_ptr<T>(), *up = ub.data_ptr<T>();
  double dv0[kMaxDim * kMaxDim] = {}, dv0b[kMaxDim] = {}, dv2[kMaxDim * kMaxDim] = {}, dv2b[kMaxDim] = {};
  double dd[4 * kMaxDim * kMaxDim] = {}, dwu[2 * kMaxDim] = {};
  for (int64_t r = 0; r < rows; ++r) {
    T q[kMaxDim], sigma[kMaxDim], z[kMaxDim], hidden[kMaxDim], x[2 * kMaxDim], q_dot[kMaxDim];  // x = [a | σ]
    if constexpr (D == 2) {
      preprocess_into(gp[r], q);
      preprocess_into(sp[r], sigma);
    } else {
      q[0] = gp[r];
      sigma[0] = sp[r];
    }
    for (int64_t j = 0; j < d; ++j) {
      T zj = v0b[j];
      for (int64_t i = 0; i < d; ++i) zj += v0[j * d + i] * q[i];
      z[j] = zj;
      hidden[j] = zj > T(0) ? zj : T(0);
    }
    for (int64_t j = 0; j < d; ++j) {
      T aj = v2b[j];
      for (int64_t i = 0; i < d; ++i) aj += v2[j * d + i] * hidden[i];
      x[j] = aj;
      x[d + j] = sigma[j];
    }
    for (int64_t i = 0; i < d; ++i) {
      T zi = 0;
      for (int64_t k = 0; k < 2 * d; ++k) zi += dw[i * 2 * d + k] * x[k];
      q_dot[i] = sigma[i] - zi;
    }
    // u = W_u [q̇ | q], q̇ = σ − (D_w x)_q, x = [a | σ], a = V2 relu(V0 q + b) + b, in reverse.
    const T ur = up[r];
    T qd_bar[kMaxDim], a_bar[kMaxDim] = {}, h_bar[kMaxDim] = {};
    for (int64_t i = 0; i < d; ++i) {
      dwu[i] += static_cast<double>(ur * q_dot[i]);
      dwu[d + i] += static_cast<double>(ur * q[i]);
      qd_bar[i] = ur * wu[i];
    }
    for (int64_t i = 0; i < d; ++i) {
      for (int64_t k = 0; k < 2 * d; ++k) dd[i * 2 * d + k] -= static_cast<double>(qd_bar[i] * x[k]);
      for (int64_t k = 0; k < d; ++k) a_bar[k] -= dw[i * 2 * d + k] * qd_bar[i];
    }
    for (int64_t j = 0; j < d; ++j) {
      dv2b[j] += static_cast<double>(a_bar[j]);
      for (int64_t m = 0; m < d; ++m) {
        dv2[j * d + m] += static_cast<double>(a_bar[j] * hidden[m]);
        h_bar[m] += v2[j * d + m] * a_bar[j];
      }
    }
    for (int64_t m = 0; m < d; ++m) {
      const T zb = z[m] > T(0) ? h_bar[m] : T(0);
      dv0b[m] += static_cast<double>(zb);
      for (int64_t i = 0; i < d; ++i) dv0[m * d + i] += static_cast<double>(zb * q[i]);
    }
  }
  const auto out = [&](const double* values, const at::Tensor& like) {
    std::vector<double> v(values, values + like.numel());
    return at::tensor(v, at::kDouble).reshape(like.sizes()).to(like.scalar_type());
  };
  return {out(dv0, kw.v0_weight), out(dv0b, kw.v0_bias), out(dv2, kw.v2_weight), out(dv2b, kw.v2_bias),
          out(dd, kw.d_weight),   out(dwu, kw.u_weight)};
}

std::vector<at::Tensor> dispatch_backward(const PhnnPaperKernelWeights& kw, const at::Tensor& g, const at::Tensor& s,
                                          const at::Tensor& u_bar) {
  const bool p = kw.preprocess;
  if (g.scalar_type() == at::kDouble) {
    return p ? run_backward<double, 2>(kw, g, s, u_bar) : run_backward<double, 1>(kw, g, s, u_bar);
  }
  return p ? run_backward<float, 2>(kw, g, s, u_bar) : run_backward<float, 1>(kw, g, s, u_bar);
}

// Inputs after g and s: the weights that u depends on first (they get cotangents), then the rest.
std::vector<at::Tensor> node_inputs(const PhnnPaperKernelWeights& kw) {
  return {kw.v0_weight, kw.v0_bias,   kw.v2_weight, kw.v2_bias, kw.d_weight, kw.u_weight, kw.g0_weight,
          kw.g0_bias,   kw.g2_weight, kw.g2_bias,   kw.inv_mass, kw.s_weight, kw.s_bias};
}

PhnnPaperKernelWeights weights_from(const at::TensorList& t, bool preprocess) {
  PhnnPaperKernelWeights kw;
  kw.v0_weight = t[2];
  kw.v0_bias = t[3];
  kw.v2_weight = t[4];
  kw.v2_bias = t[5];
  kw.d_weight = t[6];
  kw.u_weight = t[7];
  kw.g0_weight = t[8];
  kw.g0_bias = t[9];
  kw.g2_weight = t[10];
  kw.g2_bias = t[11];
  kw.inv_mass = t[12];
  kw.s_weight = t[13];
  kw.s_bias = t[14];
  kw.preprocess = preprocess;
  return kw;
}

PhnnPaperKernelStep dispatch_forward(const PhnnPaperKernelWeights& kw, const at::Tensor& g, const at::Tensor& s) {
  const bool p = kw.preprocess;
  if (g.scalar_type() == at::kDouble) return p ? run<double, 2>(kw, g, s) : run<double, 1>(kw, g, s);
  return p ? run<float, 2>(kw, g, s) : run<float, 1>(kw, g, s);
}

// The step as a graph node: u is differentiable in V.0, V.2, D_w and W_u; s' is not (see the header).
struct StepNode : torch::autograd::Function<StepNode> {
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx, at::TensorList tensors,
                                                bool preprocess) {
    const PhnnPaperKernelWeights kw = weights_from(tensors, preprocess);
    const PhnnPaperKernelStep k = dispatch_forward(kw, tensors[0], tensors[1]);
    ctx->save_for_backward(tensors.vec());
    ctx->saved_data["preprocess"] = preprocess;
    ctx->set_materialize_grads(false);
    ctx->mark_non_differentiable({k.s_next});
    return {k.u, k.s_next};
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const torch::autograd::variable_list saved = ctx->get_saved_variables();
    torch::autograd::variable_list result(saved.size() + 1);  // + preprocess
    if (!grads[0].defined()) return result;
    const PhnnPaperKernelWeights kw = weights_from(saved, ctx->saved_data["preprocess"].toBool());
    const std::vector<at::Tensor> g = dispatch_backward(kw, saved[0], saved[1], grads[0]);
    for (std::size_t i = 0; i < g.size(); ++i) result[2 + i] = g[i];
    return result;
  }
};

}  // namespace

PhnnPaperKernelStep phnn_paper_fused_step(const PhnnPaperKernelWeights& weights, const at::Tensor& g,
                                          const at::Tensor& s) {
  HAMLET_CHECK(g.dim() == 1 && s.sizes() == g.sizes(), "phnn-paper kernel: g and s must be rows [R], got ", g.sizes(),
               " and ", s.sizes());
  HAMLET_CHECK(g.device().is_cpu() && s.device().is_cpu(), "phnn-paper kernel: runs on the CPU only");
  const bool p = weights.preprocess;
  if (g.scalar_type() == at::kDouble) return p ? run<double, 2>(weights, g, s) : run<double, 1>(weights, g, s);
  HAMLET_CHECK(g.scalar_type() == at::kFloat, "phnn-paper kernel: float32 or float64 rows, got ", g.scalar_type());
  return p ? run<float, 2>(weights, g, s) : run<float, 1>(weights, g, s);
}

PhnnPaperKernelStep phnn_paper_fused_step_trainable(const PhnnPaperKernelWeights& weights, const at::Tensor& g,
                                                    const at::Tensor& s) {
  HAMLET_CHECK(g.dim() == 1 && s.sizes() == g.sizes(), "phnn-paper kernel: g and s must be rows [R], got ", g.sizes(),
               " and ", s.sizes());
  HAMLET_CHECK(g.device().is_cpu() && s.device().is_cpu(), "phnn-paper kernel: runs on the CPU only");
  HAMLET_CHECK(!g.requires_grad() && !s.requires_grad(),
               "phnn-paper kernel: the differentiable step takes g and s as constants (no second derivatives, "
               "state_grad = false)");
  const auto dtype = g.scalar_type();
  HAMLET_CHECK(dtype == at::kFloat || dtype == at::kDouble, "phnn-paper kernel: float32 or float64 rows, got ", dtype);
  std::vector<at::Tensor> tensors = {g.contiguous(), s.to(dtype).contiguous()};
  for (const auto& t : node_inputs(weights)) tensors.push_back(t.to(dtype).contiguous());
  const torch::autograd::variable_list out = StepNode::apply(at::TensorList(tensors), weights.preprocess);
  return {out[0], out[1]};
}

}  // namespace hamlet::learned
