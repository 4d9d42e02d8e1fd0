#include "hamlet/learned/phnn_paper_kernel.hpp"

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

}  // namespace hamlet::learned
