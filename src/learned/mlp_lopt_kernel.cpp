#include "hamlet/learned/mlp_lopt_kernel.hpp"

#include <cmath>
#include <vector>

#include "hamlet/core/error.hpp"

namespace hamlet::learned {
namespace {

constexpr int64_t kF = kMlpLoptFeatures;

template <typename T>
inline T rsqrt(T x) {
  return T(1) / std::sqrt(x);
}

template <typename T>
std::vector<T> values_of(const at::Tensor& t) {
  const at::Tensor c = t.to(at::kCPU, t.scalar_type()).contiguous();
  return {c.data_ptr<T>(), c.data_ptr<T>() + c.numel()};
}

// One parameter tensor of B problems with per-problem shape (n1, n2) (rank 1: n1 = 1, n2 = n; the non-factored
// path). Writes the next accumulators and the normalised feature rows [B · n1 · n2, 28] at `out`.
template <typename T>
void tensor_features(const T* p, const T* g, const T* m, const T* v, const T* fac, int64_t b_count, int64_t n1,
                     int64_t n2, bool factored, const std::vector<T>& beta_m, T beta_v, const std::vector<T>& beta_f,
                     T* m_next, T* v_next, T* fac_next, T* out) {
  const int64_t n = n1 * n2;
  // Factored axes as factored_axes(): a stable ascending sort of (n1, n2); d1 the smaller (first on ties), d0 the
  // larger. R runs along d1 (the mean over d0), C along d0.
  const bool d1_is_first = n1 <= n2;
  const int64_t len_r = factored ? (d1_is_first ? n1 : n2) : n, len_c = factored ? (d1_is_first ? n2 : n1) : 0;
  const int64_t k_slot = len_r + len_c;
  std::vector<T> mean_r(static_cast<std::size_t>(len_r * 3)), mean_c(static_cast<std::size_t>(len_c * 3));
  std::vector<T> row(static_cast<std::size_t>(len_r * 3)), col(static_cast<std::size_t>(len_c * 3));
  std::vector<T> q_r(static_cast<std::size_t>(len_r)), q_c(static_cast<std::size_t>(len_c));
  for (int64_t b = 0; b < b_count; ++b) {
    const int64_t o = b * n;
    const T *pb = p + o, *gb = g + o, *mb = m + 3 * o, *vb = v + o, *fb = fac + 3 * b * k_slot;
    T *mn = m_next + 3 * o, *vn = v_next + o, *fn = fac_next + 3 * b * k_slot;
    // Pass 1: momentum and RMS accumulators; the Adafactor statistics of q = g² + 1e-30.
    for (int64_t i = 0; i < n; ++i) {
      const T gi = gb[i], g2 = gi * gi;
      for (int64_t k = 0; k < 3; ++k) mn[3 * i + k] = beta_m[k] * mb[3 * i + k] + (T(1) - beta_m[k]) * gi;
      vn[i] = beta_v * vb[i] + (T(1) - beta_v) * g2;
    }
    if (factored) {
      std::fill(q_r.begin(), q_r.end(), T(0));
      std::fill(q_c.begin(), q_c.end(), T(0));
      for (int64_t i1 = 0; i1 < n1; ++i1) {
        for (int64_t i2 = 0; i2 < n2; ++i2) {
          const T gi = gb[i1 * n2 + i2], q = gi * gi + T(1e-30);
          q_r[static_cast<std::size_t>(d1_is_first ? i1 : i2)] += q;
          q_c[static_cast<std::size_t>(d1_is_first ? i2 : i1)] += q;
        }
      }
      const T over_d0 = static_cast<T>(len_c), over_d1 = static_cast<T>(len_r);
      for (int64_t k = 0; k < 3; ++k) {
        T sum_r = 0;
        for (int64_t i = 0; i < len_r; ++i) {
          const auto s = static_cast<std::size_t>(3 * i + k);
          const T next = beta_f[k] * fb[3 * i + k] + (T(1) - beta_f[k]) * (q_r[static_cast<std::size_t>(i)] / over_d0);
          fn[3 * i + k] = next;
          mean_r[s] = next;
          sum_r += next;
        }
        const T r_mean = sum_r / over_d1;
        for (int64_t i = 0; i < len_r; ++i) {
          const auto s = static_cast<std::size_t>(3 * i + k);
          row[s] = rsqrt(std::max(mean_r[s] / (r_mean + T(1e-9)), T(1e-9)));
        }
        for (int64_t j = 0; j < len_c; ++j) {
          const auto s = static_cast<std::size_t>(3 * j + k);
          const T next = beta_f[k] * fb[3 * (len_r + j) + k] +
                         (T(1) - beta_f[k]) * (q_c[static_cast<std::size_t>(j)] / over_d1);
          fn[3 * (len_r + j) + k] = next;
          mean_c[s] = next;
          col[s] = rsqrt(std::max(next, T(1e-9)));
        }
      }
    } else {
      for (int64_t i = 0; i < n; ++i) {
        const T q = gb[i] * gb[i] + T(1e-30);
        for (int64_t k = 0; k < 3; ++k) {
          const auto s = static_cast<std::size_t>(3 * i + k);
          const T next = beta_f[k] * fb[3 * i + k] + (T(1) - beta_f[k]) * q;
          fn[3 * i + k] = next;
          mean_r[s] = next;
        }
      }
    }
    // Pass 2: the 28 raw features (docs/methods.md §11.5 order) and each channel's sum of squares.
    T sumsq[kF] = {};
    T* ob = out + o * kF;
    for (int64_t i1 = 0; i1 < n1; ++i1) {
      for (int64_t i2 = 0; i2 < n2; ++i2) {
        const int64_t i = i1 * n2 + i2;
        T* x = ob + i * kF;
        const T gi = gb[i], rs = rsqrt(vn[i] + T(1e-6));
        x[0] = gi;
        x[1] = pb[i];
        x[5] = vn[i];
        x[9] = rs;
        const int64_t ir = factored ? (d1_is_first ? i1 : i2) : i, ic = factored ? (d1_is_first ? i2 : i1) : i;
        for (int64_t k = 0; k < 3; ++k) {
          const T mk = mn[3 * i + k];
          const T a = mean_r[static_cast<std::size_t>(3 * ir + k)];
          const T c = factored ? mean_c[static_cast<std::size_t>(3 * ic + k)] : a;
          const T scale = factored ? row[static_cast<std::size_t>(3 * ir + k)] * col[static_cast<std::size_t>(3 * ic + k)]
                                   : rsqrt(std::max(a + T(1e-9), T(1e-9)));
          x[2 + k] = mk;
          x[6 + k] = mk * rs;
          x[10 + k] = gi * scale;
          x[13 + k] = a;
          x[16 + k] = c;
          x[19 + k] = rsqrt(a + T(1e-8));
          x[22 + k] = rsqrt(c + T(1e-8));
          x[25 + k] = factored ? mk * scale : mk * rsqrt(a + T(1e-6));
        }
        for (int64_t f = 0; f < kF; ++f) sumsq[f] += x[f] * x[f];
      }
    }
    // Pass 3: x / √(1e-5 + mean x²) per channel.
    T inv[kF];
    for (int64_t f = 0; f < kF; ++f) inv[f] = T(1) / std::sqrt(sumsq[f] / static_cast<T>(n) + T(1e-5));
    for (int64_t i = 0; i < n; ++i) {
      T* x = ob + i * kF;
      for (int64_t f = 0; f < kF; ++f) x[f] *= inv[f];
    }
  }
}

// The per-problem shape (n1, n2) of a processed parameter and whether it takes the factored path.
struct Shape {
  int64_t n1, n2;
  bool factored;
};
Shape shape_of(const at::Tensor& param) {
  if (param.dim() <= 2) return {1, param.dim() == 1 ? 1 : param.size(1), false};
  return {param.size(1), param.size(2), true};
}

template <typename T>
at::Tensor run(const TensorList& params, const TensorList& grads, const MlpLoptDecays& decays,
               const optim::OptimizerState& state, optim::OptimizerState& next, const at::TensorOptions& opts) {
  const std::vector<T> beta_m = values_of<T>(decays.momentum), beta_f = values_of<T>(decays.adafactor.clamp(0.0, 1.0));
  const T beta_v = values_of<T>(decays.rms.clamp(0.0, 1.0))[0];
  int64_t total = 0;
  for (const auto& p : params) total += p.numel();
  at::Tensor rows = at::empty({total, kF}, opts);
  int64_t offset = 0;
  for (std::size_t i = 0; i < params.size(); ++i) {
    const Shape s = shape_of(params[i]);
    const at::Tensor p = params[i].to(opts).contiguous(), g = grads[i].to(opts).contiguous();
    const at::Tensor m = state.slots.at("m")[i].to(opts).contiguous(), v = state.slots.at("v")[i].to(opts).contiguous(),
                     fac = state.slots.at("fac")[i].to(opts).contiguous();
    const int64_t b_count = p.size(0), k_slot = s.factored ? s.n1 + s.n2 : s.n1 * s.n2;
    HAMLET_CHECK(m.numel() == 3 * p.numel() && v.numel() == p.numel() && fac.numel() == 3 * b_count * k_slot,
                 "mlp-lopt features: the state slots do not fit a parameter of shape ", params[i].sizes());
    at::Tensor m_next = at::empty_like(m), v_next = at::empty_like(v), fac_next = at::empty_like(fac);
    tensor_features<T>(p.data_ptr<T>(), g.data_ptr<T>(), m.data_ptr<T>(), v.data_ptr<T>(), fac.data_ptr<T>(), b_count,
                       s.n1, s.n2, s.factored, beta_m, beta_v, beta_f, m_next.data_ptr<T>(), v_next.data_ptr<T>(),
                       fac_next.data_ptr<T>(), rows.data_ptr<T>() + offset * kF);
    next.slots["m"].push_back(m_next);
    next.slots["v"].push_back(v_next);
    next.slots["fac"].push_back(fac_next);
    offset += p.numel();
  }
  return rows;
}

}  // namespace

bool mlp_lopt_fused_applies(const TensorList& params, const TensorList& grads, const MlpLoptDecays& decays,
                            const at::TensorOptions& opts) {
  if (!(opts.device().is_cpu() && (opts.dtype() == at::kFloat || opts.dtype() == at::kDouble))) return false;
  if (decays.momentum.requires_grad() || decays.rms.requires_grad() || decays.adafactor.requires_grad()) return false;
  for (std::size_t i = 0; i < params.size(); ++i) {
    if (params[i].dim() > 3 || params[i].requires_grad() || grads[i].requires_grad() || !params[i].device().is_cpu())
      return false;
  }
  return true;
}

at::Tensor mlp_lopt_feature_rows_fused(const TensorList& params, const TensorList& grads, const MlpLoptDecays& decays,
                                       const optim::OptimizerState& state, optim::OptimizerState& next,
                                       const at::TensorOptions& opts) {
  for (const char* slot : {"m", "v", "fac"}) {
    const auto it = state.slots.find(slot);
    HAMLET_CHECK(it != state.slots.end() && it->second.size() == params.size(), "mlp-lopt features: state has no slot '",
                 slot, "' for every parameter tensor (call init() first)");
  }
  HAMLET_CHECK(mlp_lopt_fused_applies(params, grads, decays, opts),
               "mlp-lopt features: the fused kernel needs CPU float32/float64 tensors of per-problem rank <= 2 and no "
               "autograd");
  if (opts.dtype() == at::kDouble) return run<double>(params, grads, decays, state, next, opts);
  return run<float>(params, grads, decays, state, next, opts);
}

}  // namespace hamlet::learned
