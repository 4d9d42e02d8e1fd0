#include "hamlet/learned/phnn_paper_kernel.hpp"

#include <torch/csrc/autograd/custom_function.h>

#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

#include "hamlet/core/error.hpp"
#include "hamlet/core/parallel.hpp"
#include "hamlet/learned/preprocess.hpp"
#include "kernel_math.hpp"
#include "update_chunks.hpp"

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

// y = W2 relu(W1 x + b1) + b2 for d × d layers (both the row kernel and the direct update use it).
template <typename T, int64_t d>
HAMLET_KERNEL_INLINE inline void relu_mlp(const T* w1, const T* b1, const T* w2, const T* b2, const T* x, T* y) {
  T hidden[kMaxDim];
  for (int64_t j = 0; j < d; ++j) {
    T z = b1[j];
    for (int64_t i = 0; i < d; ++i) z += w1[j * d + i] * x[i];
    hidden[j] = std::max(z, T(0));  // a NaN passes, as at::relu
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

// ---- Evaluation update straight from the parameter, gradient and state tensors (phnn_paper_fused_update) ----

// The weights as local values: a loop that reads them through pointers must assume every store to the outputs may
// change them, and then neither hoists nor vectorises.
template <typename T, int64_t D>
struct PaperConsts {
  T g0[D * D], g0b[D], g2[D * D], g2b[D], v0[D * D], v0b[D], v2[D * D], v2b[D], dw[4 * D * D], minv[D * D];
  T wu[2 * D], ws[2 * D], bs;
  T out_mul;
};

// One coordinate: u and the raw s' (before the normalisation), the same arithmetic as run() above.
template <typename T, int64_t D>
HAMLET_KERNEL_INLINE inline void paper_row(const PaperConsts<T, D>& c, T g, T s, T& u_out, T& s_out) {
  constexpr int64_t d = D;
  T q[D], sigma[D], force[D], a[D], x[2 * D], q_dot[D], rest[D];
  if constexpr (D == 2) {
    kernel::preprocess_select(g, kPreprocessP, q);
    kernel::preprocess_select(s, kPreprocessP, sigma);
  } else {
    q[0] = g;
    sigma[0] = s;
  }
  relu_mlp<T, D>(c.g0, c.g0b, c.g2, c.g2b, q, force);
  relu_mlp<T, D>(c.v0, c.v0b, c.v2, c.v2b, q, a);
  for (int64_t j = 0; j < d; ++j) {
    x[j] = a[j];
    x[d + j] = sigma[j];
  }
  for (int64_t i = 0; i < d; ++i) {
    T z = 0;
    for (int64_t k = 0; k < 2 * d; ++k) z += c.dw[i * 2 * d + k] * x[k];
    q_dot[i] = sigma[i] - z;
  }
  for (int64_t i = 0; i < d; ++i) {
    T z = 0;
    for (int64_t k = 0; k < 2 * d; ++k) z += c.dw[(d + i) * 2 * d + k] * x[k];
    rest[i] = force[i] - a[i] - z;
  }
  T u = 0, s_next = c.bs;
  for (int64_t j = 0; j < d; ++j) {
    T q_ddot = 0;
    for (int64_t i = 0; i < d; ++i) q_ddot += rest[i] * c.minv[i * d + j];
    u += c.wu[j] * q_dot[j] + c.wu[d + j] * q[j];
    s_next += c.ws[j] * q_dot[j] + c.ws[d + j] * q_ddot;
  }
  u_out = u;
  s_out = s_next;
}

// Lanes of the per-item sum of squares: a sum into one scalar does not vectorise without reassociation, one per
// lane does, and the lanes are added in a fixed order afterwards (the same on every ISA clone and thread count).
constexpr int64_t kLanes = 16;

// θ' = θ + out_mul · u and the raw s' for n coordinates; returns Σ s'² (in double) when `squares`.
template <typename T, int64_t D>
HAMLET_KERNEL_INLINE inline double paper_item(const PaperConsts<T, D>& c, const T* __restrict g, const T* __restrict s,
                                              const T* __restrict theta, T* __restrict theta_out,
                                              T* __restrict s_out, int64_t n, bool squares) {
  const PaperConsts<T, D> k = c;  // a local copy: no store below can change it
  for (int64_t r = 0; r < n; ++r) {
    T u, s_next;
    paper_row<T, D>(k, g[r], s[r], u, s_next);
    theta_out[r] = theta[r] + u * k.out_mul;
    s_out[r] = s_next;
  }
  if (!squares) return 0;
  double lanes[kLanes] = {};
  int64_t r = 0;
  for (; r + kLanes <= n; r += kLanes)
    for (int64_t l = 0; l < kLanes; ++l) lanes[l] += static_cast<double>(s_out[r + l]) * static_cast<double>(s_out[r + l]);
  for (; r < n; ++r) lanes[r % kLanes] += static_cast<double>(s_out[r]) * static_cast<double>(s_out[r]);
  double total = 0;
  for (int64_t l = 0; l < kLanes; ++l) total += lanes[l];
  return total;
}

__attribute__((target_clones("avx512f", "avx2", "default"))) double paper_item_float1(
    const PaperConsts<float, 1>& c, const float* g, const float* s, const float* theta, float* theta_out, float* s_out,
    int64_t n, bool squares) {
  return paper_item<float, 1>(c, g, s, theta, theta_out, s_out, n, squares);
}
__attribute__((target_clones("avx512f", "avx2", "default"))) double paper_item_float2(
    const PaperConsts<float, 2>& c, const float* g, const float* s, const float* theta, float* theta_out, float* s_out,
    int64_t n, bool squares) {
  return paper_item<float, 2>(c, g, s, theta, theta_out, s_out, n, squares);
}
__attribute__((target_clones("avx512f", "avx2", "default"))) void paper_scale_float(float* s, int64_t n,
                                                                                      float divisor) {
  for (int64_t r = 0; r < n; ++r) s[r] = s[r] / divisor;
}

template <typename T, int64_t D>
double paper_item_any(const PaperConsts<T, D>& c, const T* g, const T* s, const T* theta, T* theta_out, T* s_out,
                      int64_t n, bool squares) {
  if constexpr (std::is_same_v<T, float> && D == 1) return paper_item_float1(c, g, s, theta, theta_out, s_out, n, squares);
  else if constexpr (std::is_same_v<T, float> && D == 2) return paper_item_float2(c, g, s, theta, theta_out, s_out, n, squares);
  else return paper_item<T, D>(c, g, s, theta, theta_out, s_out, n, squares);
}

template <typename T, int64_t D>
PhnnPaperUpdate run_update(const PhnnPaperKernelWeights& kw, const TensorList& params, const TensorList& grads,
                           const TensorList& states, double out_mul, bool norm) {
  const auto dtype = params[0].scalar_type();
  constexpr int64_t d = D;
  const auto square = [](const at::Tensor& t, int64_t n) { return t.dim() == 2 && t.size(0) == n && t.size(1) == n; };
  HAMLET_CHECK(square(kw.g0_weight, d) && square(kw.g2_weight, d) && square(kw.v0_weight, d) &&
                   square(kw.v2_weight, d) && square(kw.d_weight, 2 * d) && square(kw.inv_mass, d) &&
                   kw.g0_bias.numel() == d && kw.g2_bias.numel() == d && kw.v0_bias.numel() == d &&
                   kw.v2_bias.numel() == d && kw.u_weight.numel() == 2 * d && kw.s_weight.numel() == 2 * d &&
                   kw.s_bias.numel() == 1,
               "phnn-paper kernel: weights do not fit d = ", d);
  PaperConsts<T, D> c{};
  const auto copy = [&](const at::Tensor& t, T* into) {
    const at::Tensor v = t.to(at::kDouble).contiguous();
    for (int64_t i = 0; i < v.numel(); ++i) into[i] = static_cast<T>(v.data_ptr<double>()[i]);
  };
  copy(kw.g0_weight, c.g0);
  copy(kw.g0_bias, c.g0b);
  copy(kw.g2_weight, c.g2);
  copy(kw.g2_bias, c.g2b);
  copy(kw.v0_weight, c.v0);
  copy(kw.v0_bias, c.v0b);
  copy(kw.v2_weight, c.v2);
  copy(kw.v2_bias, c.v2b);
  copy(kw.d_weight, c.dw);
  copy(kw.inv_mass, c.minv);
  copy(kw.u_weight, c.wu);
  copy(kw.s_weight, c.ws);
  copy(kw.s_bias, &c.bs);
  c.out_mul = static_cast<T>(out_mul);  // ATen rounds a scalar operand to the tensor's dtype

  const std::size_t n_tensors = params.size();
  std::vector<at::Tensor> g(n_tensors), s(n_tensors), theta(n_tensors);
  PhnnPaperUpdate out;
  for (std::size_t i = 0; i < n_tensors; ++i) {
    HAMLET_CHECK(grads[i].sizes() == params[i].sizes() && states[i].sizes() == params[i].sizes() &&
                     params[i].dim() >= 1,
                 "phnn-paper kernel: gradient and state must be shaped like the parameter [B, ...], got ",
                 grads[i].sizes(), ", ", states[i].sizes(), " for ", params[i].sizes());
    theta[i] = params[i].contiguous();
    g[i] = grads[i].to(dtype).contiguous();
    s[i] = states[i].to(dtype).contiguous();
    out.params.push_back(at::empty_like(theta[i], at::MemoryFormat::Contiguous));
    out.s.push_back(at::empty_like(theta[i], at::MemoryFormat::Contiguous));
  }
  const std::vector<chunks::Item> items = chunks::items(theta);
  std::vector<double> squares(items.size(), 0.0);
  for_each_chunk(static_cast<int64_t>(items.size()), 1, [&](int64_t k, int64_t, int64_t) {
    const chunks::Item& it = items[static_cast<std::size_t>(k)];
    const std::size_t i = static_cast<std::size_t>(it.tensor);
    const int64_t b = it.begin;
    squares[static_cast<std::size_t>(k)] =
        paper_item_any<T, D>(c, g[i].data_ptr<T>() + b, s[i].data_ptr<T>() + b, theta[i].data_ptr<T>() + b,
                             out.params[i].data_ptr<T>() + b, out.s[i].data_ptr<T>() + b, it.end - b, norm);
  });
  if (!norm) return out;
  // s' / ‖s'‖ per tensor and problem (normalise_per_tensor): the items' sums in item order give each segment's
  // squared norm, then a second pass divides.
  std::vector<T> divisor(items.size());
  for (std::size_t k = 0; k < items.size();) {
    std::size_t last = k;
    double total = 0;
    while (last < items.size() && items[last].tensor == items[k].tensor && items[last].problem == items[k].problem) {
      total += squares[last];
      ++last;
    }
    const T sq = static_cast<T>(total);
    const T div = sq > T(0) ? std::sqrt(sq) : T(1);
    for (std::size_t m = k; m < last; ++m) divisor[m] = div;
    k = last;
  }
  for_each_chunk(static_cast<int64_t>(items.size()), 1, [&](int64_t k, int64_t, int64_t) {
    const chunks::Item& it = items[static_cast<std::size_t>(k)];
    T* x = out.s[static_cast<std::size_t>(it.tensor)].data_ptr<T>() + it.begin;
    const T div = divisor[static_cast<std::size_t>(k)];
    if constexpr (std::is_same_v<T, float>) {
      paper_scale_float(x, it.end - it.begin, div);
    } else {
      for (int64_t r = 0; r < it.end - it.begin; ++r) x[r] = x[r] / div;
    }
  });
  return out;
}

}  // namespace

PhnnPaperUpdate phnn_paper_fused_update(const PhnnPaperKernelWeights& weights, const TensorList& params,
                                        const TensorList& grads, const TensorList& states, double out_mul,
                                        bool norm) {
  HAMLET_CHECK(!params.empty() && grads.size() == params.size() && states.size() == params.size(),
               "phnn-paper kernel: one gradient and one state tensor per parameter tensor");
  const auto dtype = params[0].scalar_type();
  HAMLET_CHECK(dtype == at::kFloat || dtype == at::kDouble, "phnn-paper kernel: float32 or float64, got ", dtype);
  for (std::size_t i = 0; i < params.size(); ++i) {
    HAMLET_CHECK(params[i].scalar_type() == dtype && params[i].device().is_cpu() && grads[i].device().is_cpu() &&
                     states[i].device().is_cpu(),
                 "phnn-paper kernel: CPU tensors of one dtype");
  }
  const bool p = weights.preprocess;
  if (dtype == at::kDouble) {
    return p ? run_update<double, 2>(weights, params, grads, states, out_mul, norm)
             : run_update<double, 1>(weights, params, grads, states, out_mul, norm);
  }
  return p ? run_update<float, 2>(weights, params, grads, states, out_mul, norm)
           : run_update<float, 1>(weights, params, grads, states, out_mul, norm);
}

namespace {

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
