#pragma once
// The feature passes of mlp-lopt's fused update (mlp_lopt_update_kernel.hpp), shared by every fused update that
// reads mlp-lopt's 28 normalised features: mlp-lopt's own (its network after layer 0) and phnn-features'
// (phnn_kernel.hpp fused_features_update: the context biases of its G and D networks). Private to src/learned.
//
// For one job (one problem's slice of one parameter tensor, per-problem rank ≤ 2), prepare_layer0 runs
//   pass 1  m', v' (and V' for rank ≤ 1) written out, the sums of q = g² + 1e-30 along both axes (rank 2) and the
//           per-channel sums of squares of every feature known per coordinate at this point;
//   then    R', C' and their inverse roots (rank 2, written out), the sums of squares of the broadcast features;
//   pass 2  (rank 2) the sums of squares of g·F_k and m_k·F_k;
// and returns a linear layer on the normalised features, h = Σ_c W[c] x_c / rms_c + b, with every 1/rms_c folded
// into W's rows and, for a rank-2 slice, the broadcast channels' share (and b) tabulated per row and per column of
// the slice. The caller's last pass evaluates h per block of coordinates with layer0_start and layer0_features.
// Chunks of a pass have a size that depends on the slice's size alone and every sum is combined in chunk order, so
// the results are the same bits on any thread count.
#include <ATen/ATen.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "hamlet/core/error.hpp"
#include "hamlet/core/tensor.hpp"
#include "hamlet/learned/mlp_lopt.hpp"
#include "kernel_math.hpp"

namespace hamlet::learned::lopt {

constexpr int64_t kF = kMlpLoptFeatures;
// Coordinates per block of passes 1 and 2 (and of mlp-lopt's last pass); each quantity of a block is stored as
// [component][kBlock], so that the loops run across the block's coordinates and vectorise.
constexpr int64_t kBlock = 128;
// Coordinates per chunk of passes 1 and 2, at most (chunk_size).
constexpr int64_t kChunk = 16384;

// The feature channels (docs/methods.md §11.5 order): g, p, m_k, v, m_k·rs, rs, g·F_k, a_k, c_k, (a_k + 1e-8)^−½,
// (c_k + 1e-8)^−½, m_k·F'_k.
constexpr int64_t kG = 0, kP = 1, kM = 2, kV = 5, kMRs = 6, kRs = 9, kGS = 10, kA = 13, kC = 16, kRa = 19, kRc = 22,
                  kMS = 25;
// The channels known per coordinate of a factored tensor (the other twelve are broadcast along a row or column).
constexpr int64_t kLocal[] = {kG,      kP,      kM,      kM + 1,  kM + 2,  kV,      kMRs, kMRs + 1,
                              kMRs + 2, kRs,     kGS,     kGS + 1, kGS + 2, kMS,     kMS + 1, kMS + 2};
constexpr int64_t kLocalCount = sizeof(kLocal) / sizeof(kLocal[0]);

template <typename T>
HAMLET_KERNEL_INLINE inline T rsqrt(T x) {
  return T(1) / std::sqrt(x);
}

// One problem's slice of one parameter tensor, memory shape (n1, n2) (rank ≤ 1: n1 = 1, not factored): the
// parameters p, gradients g and accumulators in, their next values out.
template <typename T>
struct Job {
  const T *p, *g, *m, *v, *fac;
  T *p_next, *m_next, *v_next, *fac_next;
  int64_t n1 = 0, n2 = 0, n = 0;
  bool factored = false;
};

// The accumulators' decays β and 1 − β (momentum ×3, Adafactor ×3 clipped to [0, 1], RMS clipped).
template <typename T>
struct Decays {
  T beta_m[3], one_m[3], beta_f[3], one_f[3], beta_v = 0, one_v = 0;
};
template <typename T>
Decays<T> decays_of(const MlpLoptDecays& decays);

// The layer on the normalised features of one job: W's rows scaled by the channels' 1/rms (w [28][width]); not
// factored the bias b [width]; factored, the broadcast channels' share with the bias per index of axis 1 (t1
// [width][n1]) and of axis 2 (t2 [width][n2]), and the Adafactor factor F_k = row_k · col_k split the same way (f1
// [3][n1], f2 [3][n2]). inv holds the channels' 1/rms (inv[kG] normalises the gradient), w_units the scaled rows
// unit-major, [width][28].
template <typename T>
struct Layer0 {
  int64_t width = 0;
  std::vector<T> w, b, t1, t2, f1, f2, w_units;
  T inv[kF];
};

// Passes 1 and 2 of one job (threaded over chunks), writing m', v', fac', and the layer h = W x̄ + b on its
// normalised features for W = w0 [28][width] (input-major) and b = b0 [width].
template <typename T>
Layer0<T> prepare_layer0(const Decays<T>& decays, const Job<T>& x, const std::vector<T>& w0, const std::vector<T>& b0,
                         int64_t width);

// The chunk size for a slice of n coordinates, at most max_chunk: a function of n alone. A slice of more than one
// chunk is cut into a multiple of 8 chunks of equal size (whole kBlock blocks), so that 2, 4 or 8 threads get equal
// shares (cut into ⌈n / max_chunk⌉ chunks, 157k coordinates would leave one thread 9 % more than the other).
int64_t chunk_size(int64_t n, int64_t max_chunk = kChunk);

// Calls f(i, b, job) for each parameter tensor i and problem b in order, with the job's outputs allocated: the new
// parameters in `params_next` (dtype of `opts`), the new slots "m", "v", "fac" in `next`. `params` in the dtype
// of `opts`, per-problem rank ≤ 2 (mlp_lopt_update_fused_applies); `state` holds the slots "m", "v", "fac".
template <typename T, typename F>
void for_each_job(const TensorList& params, const TensorList& grads, const optim::OptimizerState& state,
                  const at::TensorOptions& opts, TensorList& params_next, optim::OptimizerState& next, const F& f) {
  for (std::size_t i = 0; i < params.size(); ++i) {
    const at::Tensor p = params[i].contiguous(), g = grads[i].to(opts).contiguous();
    const at::Tensor m = state.slots.at("m")[i].to(opts).contiguous(), v = state.slots.at("v")[i].to(opts).contiguous(),
                     fac = state.slots.at("fac")[i].to(opts).contiguous();
    const int64_t b_count = p.size(0), n = b_count > 0 ? p.numel() / b_count : 0;
    const bool factored = p.dim() == 3;
    const int64_t n1 = factored ? p.size(1) : 1, n2 = factored ? p.size(2) : n;
    const int64_t k_slot = factored ? n1 + n2 : n;
    HAMLET_CHECK(g.sizes() == p.sizes() && m.numel() == 3 * p.numel() && v.numel() == p.numel() &&
                     fac.numel() == 3 * b_count * k_slot,
                 "mlp-lopt features: the gradient or the state slots do not fit a parameter of shape ", p.sizes());
    at::Tensor p_next = at::empty(p.sizes(), opts), m_next = at::empty_like(m), v_next = at::empty_like(v),
               fac_next = at::empty_like(fac);
    for (int64_t b = 0; b < b_count && n > 0; ++b) {
      Job<T> x;
      x.p = p.data_ptr<T>() + b * n;
      x.g = g.data_ptr<T>() + b * n;
      x.m = m.data_ptr<T>() + 3 * b * n;
      x.v = v.data_ptr<T>() + b * n;
      x.fac = fac.data_ptr<T>() + 3 * b * k_slot;
      x.p_next = p_next.data_ptr<T>() + b * n;
      x.m_next = m_next.data_ptr<T>() + 3 * b * n;
      x.v_next = v_next.data_ptr<T>() + b * n;
      x.fac_next = fac_next.data_ptr<T>() + 3 * b * k_slot;
      x.n1 = n1;
      x.n2 = n2;
      x.n = n;
      x.factored = factored;
      f(i, b, x);
    }
    params_next.push_back(p_next);
    next.slots["m"].push_back(m_next);
    next.slots["v"].push_back(v_next);
    next.slots["fac"].push_back(fac_next);
  }
}

// The flat coordinates [first, first + n) of a factored slice as runs along its second axis: calls
// f(offset in the block, i1, first i2, length) for each run.
template <typename F>
HAMLET_KERNEL_INLINE inline void for_each_run(int64_t first, int64_t n, int64_t n2, const F& f) {
  int64_t i1 = first / n2, i2 = first % n2;
  for (int64_t o = 0; o < n;) {
    const int64_t len = std::min(n - o, n2 - i2);
    f(o, i1, i2, len);
    o += len;
    i2 = 0;
    ++i1;
  }
}

// The Adafactor factors F_k of the coordinates [first, first + n) of a factored slice: scale[k][r] = f1_k[i1] ·
// f2_k[i2], for a block stored with stride S.
template <int64_t S, typename T>
HAMLET_KERNEL_INLINE inline void factors_block(const Job<T>& x, const Layer0<T>& l0, int64_t first, int64_t n,
                                               T* __restrict__ scale) {
  for_each_run(first, n, x.n2, [&](int64_t o, int64_t i1, int64_t i2, int64_t len) HAMLET_KERNEL_INLINE {
    for (int64_t k = 0; k < 3; ++k) {
      const T a = l0.f1[static_cast<std::size_t>(k * x.n1 + i1)];
      const T* __restrict__ b = l0.f2.data() + k * x.n2 + i2;
      T* __restrict__ out = scale + k * S + o;
      for (int64_t r = 0; r < len; ++r) out[r] = a * b[r];
    }
  });
}

// The first part of the layer for the coordinates [first, first + n) (n ≤ S, stride S): h[u][r] = its bias, plus
// for a factored slice the broadcast channels' share, whose F_k go to scale [3][S].
template <int64_t S, typename T>
HAMLET_KERNEL_INLINE inline void layer0_start(const Job<T>& x, const Layer0<T>& l0, int64_t first, int64_t n,
                                              T* __restrict__ scale, T* __restrict__ h) {
  const int64_t width = l0.width;
  if (x.factored) {
    factors_block<S>(x, l0, first, n, scale);
    for_each_run(first, n, x.n2, [&](int64_t o, int64_t i1, int64_t i2, int64_t len) HAMLET_KERNEL_INLINE {
      for (int64_t u = 0; u < width; ++u) {
        const T a = l0.t1[static_cast<std::size_t>(u * x.n1 + i1)];
        const T* __restrict__ b = l0.t2.data() + u * x.n2 + i2;
        T* __restrict__ hu = h + u * S + o;
        for (int64_t r = 0; r < len; ++r) hu[r] = a + b[r];
      }
    });
  } else {
    for (int64_t u = 0; u < width; ++u) {
      const T b = l0.b[static_cast<std::size_t>(u)];
      T* __restrict__ hu = h + u * S;
      for (int64_t r = 0; r < n; ++r) hu[r] = b;
    }
  }
}

// The per-coordinate channels of [first, first + n) into feat [28][S]: factored, the 16 of kLocal (after
// layer0_start filled scale), else all 28.
template <int64_t S, typename T>
HAMLET_KERNEL_INLINE inline void features_block(const Job<T>& x, int64_t first, int64_t n, T* __restrict__ feat,
                                                const T* __restrict__ scale) {
  const T* __restrict__ g = x.g + first;
  const T* __restrict__ p = x.p + first;
  const T* __restrict__ mn = x.m_next + 3 * first;
  const T* __restrict__ vn = x.v_next + first;
  for (int64_t r = 0; r < n; ++r) {
    const T gi = g[r], vv = vn[r], rs = rsqrt(vv + T(1e-6));
    feat[kG * S + r] = gi;
    feat[kP * S + r] = p[r];
    feat[kV * S + r] = vv;
    feat[kRs * S + r] = rs;
    for (int64_t k = 0; k < 3; ++k) {
      const T mk = mn[3 * r + k];
      feat[(kM + k) * S + r] = mk;
      feat[(kMRs + k) * S + r] = mk * rs;
    }
  }
  if (x.factored) {
    for (int64_t r = 0; r < n; ++r) {
      const T gi = g[r];
      for (int64_t k = 0; k < 3; ++k) {
        const T f = scale[k * S + r];
        feat[(kGS + k) * S + r] = gi * f;
        feat[(kMS + k) * S + r] = mn[3 * r + k] * f;
      }
    }
  } else {
    const T* __restrict__ fn = x.fac_next + 3 * first;
    for (int64_t r = 0; r < n; ++r) {
      const T gi = g[r];
      for (int64_t k = 0; k < 3; ++k) {
        const T a = fn[3 * r + k], ra = rsqrt(a + T(1e-8));
        feat[(kGS + k) * S + r] = gi * rsqrt(std::max(a + T(1e-9), T(1e-9)));
        feat[(kA + k) * S + r] = a;
        feat[(kC + k) * S + r] = a;
        feat[(kRa + k) * S + r] = ra;
        feat[(kRc + k) * S + r] = ra;
        feat[(kMS + k) * S + r] = mn[3 * r + k] * rsqrt(a + T(1e-6));
      }
    }
  }
}

// h[u][r] += Σ_c w[c][u] feat[c][r] over the per-coordinate channels (kLocal when factored, else all 28), channel
// after channel in that order, for the first n coordinates.
template <int64_t S, typename T>
HAMLET_KERNEL_INLINE inline void layer0_add_features(const Layer0<T>& l0, bool factored, int64_t n,
                                                     const T* __restrict__ feat, T* __restrict__ h) {
  const int64_t width = l0.width;
  // The sums in a local array: nothing can point into it, so the loops vectorise without alias checks (behind the
  // inlining, the pointers' __restrict__ does not always reach GCC's vectoriser).
  alignas(64) T acc[S];
  for (int64_t u = 0; u < width; ++u) {
    T* __restrict__ hu = h + u * S;
    for (int64_t r = 0; r < n; ++r) acc[r] = hu[r];
    const auto add = [&](int64_t c) HAMLET_KERNEL_INLINE {
      const T w = l0.w[static_cast<std::size_t>(c * width + u)];
      const T* __restrict__ xc = feat + c * S;
      for (int64_t r = 0; r < n; ++r) acc[r] += w * xc[r];
    };
    if (factored) {
      for (int64_t c : kLocal) add(c);
    } else {
      for (int64_t c = 0; c < kF; ++c) add(c);
    }
    for (int64_t r = 0; r < n; ++r) hu[r] = acc[r];
  }
}

// features_block, then layer0_add_features.
template <int64_t S, typename T>
HAMLET_KERNEL_INLINE inline void layer0_features(const Job<T>& x, const Layer0<T>& l0, int64_t first, int64_t n,
                                                 T* __restrict__ feat, const T* __restrict__ scale,
                                                 T* __restrict__ h) {
  features_block<S>(x, first, n, feat, scale);
  layer0_add_features<S>(l0, x.factored, n, feat, h);
}

}  // namespace hamlet::learned::lopt
