#include "hamlet/learned/mlp_lopt_update_kernel.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "hamlet/core/error.hpp"
#include "hamlet/core/parallel.hpp"
#include "hamlet/learned/mlp_lopt_kernel.hpp"
#include "kernel_math.hpp"

namespace hamlet::learned {
namespace {

constexpr int64_t kF = kMlpLoptFeatures;
// Coordinates per block; each quantity of a block is stored as [component][kBlock], so that the loops run across
// the block's coordinates and vectorise. 128 keeps a block's features and hidden units (float32, H = 4: ~22 KB) in
// L1.
constexpr int64_t kBlock = 128;
// Coordinates per chunk, the unit of work of a thread, at most. Never derived from the thread count: the sums are
// formed per chunk and added in chunk order, so every thread count gives the same bits.
constexpr int64_t kChunk = 16384;
// A slice of more than one chunk is cut into a multiple of this many chunks of equal size (whole blocks), so that
// 2, 4 or 8 threads get equal shares: cut into ⌈n / kChunk⌉ chunks, 157k coordinates would leave one thread 9 %
// more than the other.
constexpr int64_t kChunkMultiple = 8;
// Lanes of a row sum: a sum into one scalar does not vectorise without reassociation, 16 partial sums do.
constexpr int64_t kLanes = 16;

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

// One problem's slice of one parameter tensor, memory shape (n1, n2) (rank ≤ 1: n1 = 1, not factored).
template <typename T>
struct Job {
  const T *p, *g, *m, *v, *fac;
  T *p_next, *m_next, *v_next, *fac_next;
  int64_t n1 = 0, n2 = 0, n = 0;
  bool factored = false;
};

// What a step shares over tensors: the decays, the MLP past layer 0, the output scales.
template <typename T>
struct Step {
  T beta_m[3], one_m[3], beta_f[3], one_f[3], beta_v = 0, one_v = 0;
  std::vector<int64_t> width;          // outputs of each linear layer (width[0] = layer 0's, the last = 2)
  std::vector<std::vector<T>> w, b;    // layers 1.. as [in][out] and [out]; w[0], b[0] unused
  std::vector<T> w0;                   // layer 0's rows for the 28 features [28][width[0]]
  std::vector<T> b0;                   // its bias with the time features folded in [width[0]]
  T exp_mult = 0, scale = 0;           // λ_e; out_mul · λ_s
  int64_t max_width = 0;
};

// Layer 0 of one job: W0's feature rows scaled by the channels' 1/RMS; for a factored tensor the broadcast
// channels' share of layer 0 (bias included) per index of axis 1 (t1) and of axis 2 (t2), and the Adafactor factor
// F_k = row_k · col_k split the same way (f1, f2).
template <typename T>
struct Layer0 {
  std::vector<T> w;       // [28][W]
  std::vector<T> b;       // [W] (not factored)
  std::vector<T> t1, t2;  // [W][n1], [W][n2]
  std::vector<T> f1, f2;  // [3][n1], [3][n2]
};

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

// Pass 1 over the chunk [begin, end): m', v' (and V' when not factored) written out; the channels' sums of squares
// into sq[28] (factored: the ten channels known here); for a factored slice the row sums of q into part1[n1] and
// the column sums into part2[n2] (both zeroed here).
template <typename T>
HAMLET_KERNEL_INLINE inline void pass1(const Step<T>& s, const Job<T>& x, int64_t begin, int64_t end, double* sq,
                                       T* __restrict__ part1, T* __restrict__ part2) {
  // Scratch as local arrays: GCC knows that nothing else points into them, so the loops need no alias checks.
  alignas(64) T lanes[kF * kBlock] = {};
  alignas(64) T q[kBlock];
  if (x.factored) {
    std::fill(part1, part1 + x.n1, T(0));
    std::fill(part2, part2 + x.n2, T(0));
  }
  const T bm0 = s.beta_m[0], bm1 = s.beta_m[1], bm2 = s.beta_m[2], om0 = s.one_m[0], om1 = s.one_m[1],
          om2 = s.one_m[2], bv = s.beta_v, ov = s.one_v;
  for (int64_t first = begin; first < end; first += kBlock) {
    const int64_t n = std::min(kBlock, end - first);
    const T* __restrict__ g = x.g + first;
    const T* __restrict__ p = x.p + first;
    const T* __restrict__ m = x.m + 3 * first;
    const T* __restrict__ v = x.v + first;
    T* __restrict__ mn = x.m_next + 3 * first;
    T* __restrict__ vn = x.v_next + first;
    for (int64_t r = 0; r < n; ++r) {
      const T gi = g[r], g2 = gi * gi;
      const T m0 = bm0 * m[3 * r] + om0 * gi, m1 = bm1 * m[3 * r + 1] + om1 * gi, m2 = bm2 * m[3 * r + 2] + om2 * gi;
      mn[3 * r] = m0;
      mn[3 * r + 1] = m1;
      mn[3 * r + 2] = m2;
      const T vv = bv * v[r] + ov * g2;
      vn[r] = vv;
      const T rs = rsqrt(vv + T(1e-6));
      const T pi = p[r], a0 = m0 * rs, a1 = m1 * rs, a2 = m2 * rs;
      lanes[kG * kBlock + r] += gi * gi;
      lanes[kP * kBlock + r] += pi * pi;
      lanes[kM * kBlock + r] += m0 * m0;
      lanes[(kM + 1) * kBlock + r] += m1 * m1;
      lanes[(kM + 2) * kBlock + r] += m2 * m2;
      lanes[kV * kBlock + r] += vv * vv;
      lanes[kMRs * kBlock + r] += a0 * a0;
      lanes[(kMRs + 1) * kBlock + r] += a1 * a1;
      lanes[(kMRs + 2) * kBlock + r] += a2 * a2;
      lanes[kRs * kBlock + r] += rs * rs;
      q[r] = g2 + T(1e-30);
    }
    if (x.factored) {
      for_each_run(first, n, x.n2, [&](int64_t o, int64_t i1, int64_t i2, int64_t len) HAMLET_KERNEL_INLINE {
        T* __restrict__ col = part2 + i2;
        const T* __restrict__ qo = q + o;
        for (int64_t r = 0; r < len; ++r) col[r] += qo[r];
        T acc[kLanes] = {};
        int64_t r = 0;
        for (; r + kLanes <= len; r += kLanes) {
          for (int64_t l = 0; l < kLanes; ++l) acc[l] += qo[r + l];
        }
        for (int64_t l = 0; r + l < len; ++l) acc[l] += qo[r + l];
        T sum = 0;
        for (int64_t l = 0; l < kLanes; ++l) sum += acc[l];
        part1[i1] += sum;
      });
    } else {
      const T* __restrict__ f = x.fac + 3 * first;
      T* __restrict__ fn = x.fac_next + 3 * first;
      for (int64_t r = 0; r < n; ++r) {
        const T gi = g[r];
        for (int64_t k = 0; k < 3; ++k) {
          const T a = s.beta_f[k] * f[3 * r + k] + s.one_f[k] * q[r];
          fn[3 * r + k] = a;
          const T gs = gi * rsqrt(std::max(a + T(1e-9), T(1e-9)));
          const T ra = rsqrt(a + T(1e-8));
          const T ms = mn[3 * r + k] * rsqrt(a + T(1e-6));
          lanes[(kGS + k) * kBlock + r] += gs * gs;
          lanes[(kA + k) * kBlock + r] += a * a;
          lanes[(kC + k) * kBlock + r] += a * a;
          lanes[(kRa + k) * kBlock + r] += ra * ra;
          lanes[(kRc + k) * kBlock + r] += ra * ra;
          lanes[(kMS + k) * kBlock + r] += ms * ms;
        }
      }
    }
  }
  for (int64_t c = 0; c < kF; ++c) {
    double sum = 0;
    for (int64_t r = 0; r < kBlock; ++r) sum += static_cast<double>(lanes[c * kBlock + r]);
    sq[c] = sum;
  }
}

// The Adafactor factors F_k of the block's coordinates of a factored slice: scale[k][r] = f1_k[i1] · f2_k[i2].
template <typename T>
HAMLET_KERNEL_INLINE inline void factors_block(const Job<T>& x, const Layer0<T>& l0, int64_t first, int64_t n,
                                               T* __restrict__ scale) {
  for_each_run(first, n, x.n2, [&](int64_t o, int64_t i1, int64_t i2, int64_t len) HAMLET_KERNEL_INLINE {
    for (int64_t k = 0; k < 3; ++k) {
      const T a = l0.f1[static_cast<std::size_t>(k * x.n1 + i1)];
      const T* __restrict__ b = l0.f2.data() + k * x.n2 + i2;
      T* __restrict__ out = scale + k * kBlock + o;
      for (int64_t r = 0; r < len; ++r) out[r] = a * b[r];
    }
  });
}

// Pass 2 (factored slices) over [begin, end): the sums of squares of g·F_k and m_k·F_k into sq[6].
template <typename T>
HAMLET_KERNEL_INLINE inline void pass2(const Job<T>& x, const Layer0<T>& l0, int64_t begin, int64_t end, double* sq) {
  alignas(64) T lanes[6 * kBlock] = {};
  alignas(64) T scale[3 * kBlock];
  for (int64_t first = begin; first < end; first += kBlock) {
    const int64_t n = std::min(kBlock, end - first);
    factors_block(x, l0, first, n, scale);
    const T* __restrict__ g = x.g + first;
    const T* __restrict__ mn = x.m_next + 3 * first;
    for (int64_t r = 0; r < n; ++r) {
      const T gi = g[r];
      for (int64_t k = 0; k < 3; ++k) {
        const T f = scale[k * kBlock + r], gs = gi * f, ms = mn[3 * r + k] * f;
        lanes[k * kBlock + r] += gs * gs;
        lanes[(3 + k) * kBlock + r] += ms * ms;
      }
    }
  }
  for (int64_t c = 0; c < 6; ++c) {
    double sum = 0;
    for (int64_t r = 0; r < kBlock; ++r) sum += static_cast<double>(lanes[c * kBlock + r]);
    sq[c] = sum;
  }
}

HAMLET_KERNEL_INLINE inline float exp_step(float x) { return kernel::exp_vectorisable(x); }
HAMLET_KERNEL_INLINE inline double exp_step(double x) { return std::exp(x); }

// The default network (hidden_layers = 2) with its width W known at compile time: its weights for a factored slice,
// layer 0's rows of the 16 per-coordinate channels already divided by their RMS.
constexpr int kFixedWidth = 4;
template <typename T, int W>
struct FixedNet {
  T w0[kLocalCount][W], w1[W][W], b1[W], w2[W][2], b2[2];
};

// Features, MLP and θ' of a factored block in one loop across its coordinates, everything of a coordinate in
// registers: the per-channel loops of the general path store and reload the hidden units once per input channel,
// which bounds them by the stores. Same arithmetic in the same order as the general path. `scale` [3][kBlock] holds
// F_k, `e` [W][kBlock] layer 0's bias plus the broadcast channels' share.
template <typename T, int W>
HAMLET_KERNEL_INLINE inline void fixed_block(const FixedNet<T, W>& net, T em, T sc, const T* __restrict__ g,
                                             const T* __restrict__ p, const T* __restrict__ mn,
                                             const T* __restrict__ vn, const T* __restrict__ scale,
                                             const T* __restrict__ e, int64_t n, T* __restrict__ theta_next) {
  for (int64_t r = 0; r < n; ++r) {
    const T gi = g[r], pi = p[r], vv = vn[r], rs = rsqrt(vv + T(1e-6));
    const T m0 = mn[3 * r], m1 = mn[3 * r + 1], m2 = mn[3 * r + 2];
    const T f0 = scale[r], f1 = scale[kBlock + r], f2 = scale[2 * kBlock + r];
    const T x[kLocalCount] = {gi,     pi,     m0,      m1,      m2,      vv,      m0 * rs, m1 * rs,
                              m2 * rs, rs,    gi * f0, gi * f1, gi * f2, m0 * f0, m1 * f1, m2 * f2};
    T h[W];
#pragma GCC unroll 16
    for (int u = 0; u < W; ++u) h[u] = e[u * kBlock + r];
#pragma GCC unroll 16
    for (int c = 0; c < kLocalCount; ++c) {
#pragma GCC unroll 16
      for (int u = 0; u < W; ++u) h[u] += net.w0[c][u] * x[c];
    }
    T h1[W];
#pragma GCC unroll 16
    for (int u = 0; u < W; ++u) h1[u] = net.b1[u];
#pragma GCC unroll 16
    for (int j = 0; j < W; ++j) {
      const T a = h[j] < T(0) ? T(0) : h[j];
#pragma GCC unroll 16
      for (int u = 0; u < W; ++u) h1[u] += net.w1[j][u] * a;
    }
    T d = net.b2[0], mu = net.b2[1];
#pragma GCC unroll 16
    for (int j = 0; j < W; ++j) {
      const T a = h1[j] < T(0) ? T(0) : h1[j];
      d += net.w2[j][0] * a;
      mu += net.w2[j][1] * a;
    }
    theta_next[r] = pi - d * exp_step(em * mu) * sc;
  }
}

// Pass 3 over [begin, end): features, MLP and θ' per block.
template <typename T>
HAMLET_KERNEL_INLINE inline void pass3(const Step<T>& s, const Job<T>& x, const Layer0<T>& l0, int64_t begin,
                                       int64_t end) {
  const int64_t w0 = s.width[0], wmax = s.max_width;
  const bool fixed = x.factored && s.width.size() == 3 && w0 == kFixedWidth && s.width[1] == kFixedWidth;
  FixedNet<T, kFixedWidth> net{};
  if (fixed) {
    for (int c = 0; c < kLocalCount; ++c) {
      for (int u = 0; u < kFixedWidth; ++u) net.w0[c][u] = l0.w[static_cast<std::size_t>(kLocal[c] * w0 + u)];
    }
    for (int j = 0; j < kFixedWidth; ++j) {
      net.b1[j] = s.b[1][static_cast<std::size_t>(j)];
      for (int u = 0; u < kFixedWidth; ++u) net.w1[j][u] = s.w[1][static_cast<std::size_t>(j * kFixedWidth + u)];
      for (int u = 0; u < 2; ++u) net.w2[j][u] = s.w[2][static_cast<std::size_t>(j * 2 + u)];
    }
    net.b2[0] = s.b[2][0];
    net.b2[1] = s.b[2][1];
  }
  alignas(64) T feat[kF * kBlock];
  alignas(64) T scale[3 * kBlock];
  std::vector<T> hidden(static_cast<std::size_t>(2 * wmax * kBlock), T(0));
  T* ha = hidden.data();
  T* hb = ha + wmax * kBlock;
  for (int64_t first = begin; first < end; first += kBlock) {
    const int64_t n = std::min(kBlock, end - first);
    const T* __restrict__ g = x.g + first;
    const T* __restrict__ p = x.p + first;
    const T* __restrict__ mn = x.m_next + 3 * first;
    const T* __restrict__ vn = x.v_next + first;
    // Layer 0 starts from its bias and, for a factored slice, the broadcast channels' share.
    if (x.factored) {
      factors_block(x, l0, first, n, scale);
      for_each_run(first, n, x.n2, [&](int64_t o, int64_t i1, int64_t i2, int64_t len) HAMLET_KERNEL_INLINE {
        for (int64_t u = 0; u < w0; ++u) {
          const T a = l0.t1[static_cast<std::size_t>(u * x.n1 + i1)];
          const T* __restrict__ b = l0.t2.data() + u * x.n2 + i2;
          T* __restrict__ h = ha + u * kBlock + o;
          for (int64_t r = 0; r < len; ++r) h[r] = a + b[r];
        }
      });
    } else {
      for (int64_t u = 0; u < w0; ++u) {
        const T b = l0.b[static_cast<std::size_t>(u)];
        T* __restrict__ h = ha + u * kBlock;
        for (int64_t r = 0; r < n; ++r) h[r] = b;
      }
    }
    if (fixed) {
      fixed_block(net, s.exp_mult, s.scale, g, p, mn, vn, scale, ha, n, x.p_next + first);
      continue;
    }
    for (int64_t r = 0; r < n; ++r) {
      const T gi = g[r], vv = vn[r], rs = rsqrt(vv + T(1e-6));
      feat[kG * kBlock + r] = gi;
      feat[kP * kBlock + r] = p[r];
      feat[kV * kBlock + r] = vv;
      feat[kRs * kBlock + r] = rs;
      for (int64_t k = 0; k < 3; ++k) {
        const T mk = mn[3 * r + k];
        feat[(kM + k) * kBlock + r] = mk;
        feat[(kMRs + k) * kBlock + r] = mk * rs;
      }
    }
    if (x.factored) {
      for (int64_t r = 0; r < n; ++r) {
        const T gi = g[r];
        for (int64_t k = 0; k < 3; ++k) {
          const T f = scale[k * kBlock + r];
          feat[(kGS + k) * kBlock + r] = gi * f;
          feat[(kMS + k) * kBlock + r] = mn[3 * r + k] * f;
        }
      }
      for (int64_t u = 0; u < w0; ++u) {
        T* __restrict__ h = ha + u * kBlock;
        for (int64_t c : kLocal) {
          const T w = l0.w[static_cast<std::size_t>(c * w0 + u)];
          const T* __restrict__ xc = feat + c * kBlock;
          for (int64_t r = 0; r < n; ++r) h[r] += w * xc[r];
        }
      }
    } else {
      const T* __restrict__ fn = x.fac_next + 3 * first;
      for (int64_t r = 0; r < n; ++r) {
        const T gi = g[r];
        for (int64_t k = 0; k < 3; ++k) {
          const T a = fn[3 * r + k], ra = rsqrt(a + T(1e-8));
          feat[(kGS + k) * kBlock + r] = gi * rsqrt(std::max(a + T(1e-9), T(1e-9)));
          feat[(kA + k) * kBlock + r] = a;
          feat[(kC + k) * kBlock + r] = a;
          feat[(kRa + k) * kBlock + r] = ra;
          feat[(kRc + k) * kBlock + r] = ra;
          feat[(kMS + k) * kBlock + r] = mn[3 * r + k] * rsqrt(a + T(1e-6));
        }
      }
      for (int64_t u = 0; u < w0; ++u) {
        T* __restrict__ h = ha + u * kBlock;
        for (int64_t c = 0; c < kF; ++c) {
          const T w = l0.w[static_cast<std::size_t>(c * w0 + u)];
          const T* __restrict__ xc = feat + c * kBlock;
          for (int64_t r = 0; r < n; ++r) h[r] += w * xc[r];
        }
      }
    }
    // Layers 1..: ReLU of the previous layer, then the affine map.
    T* in = ha;
    T* out = hb;
    for (std::size_t l = 1; l < s.width.size(); ++l) {
      const int64_t n_in = s.width[l - 1], n_out = s.width[l];
      for (int64_t j = 0; j < n_in; ++j) {
        T* __restrict__ h = in + j * kBlock;
        for (int64_t r = 0; r < n; ++r) h[r] = h[r] < T(0) ? T(0) : h[r];
      }
      const std::vector<T>& w = s.w[l];
      for (int64_t u = 0; u < n_out; ++u) {
        T* __restrict__ o = out + u * kBlock;
        const T b = s.b[l][static_cast<std::size_t>(u)];
        for (int64_t r = 0; r < n; ++r) o[r] = b;
        for (int64_t j = 0; j < n_in; ++j) {
          const T wj = w[static_cast<std::size_t>(j * n_out + u)];
          const T* __restrict__ h = in + j * kBlock;
          for (int64_t r = 0; r < n; ++r) o[r] += wj * h[r];
        }
      }
      std::swap(in, out);
    }
    // θ' = θ − d · exp(λ_e μ) · (λ_s out_mul), as the tensor path associates it.
    const T* __restrict__ d = in;
    const T* __restrict__ mu = in + kBlock;
    T* __restrict__ theta_next = x.p_next + first;
    const T em = s.exp_mult, sc = s.scale;
    for (int64_t r = 0; r < n; ++r) theta_next[r] = p[r] - d[r] * exp_step(em * mu[r]) * sc;
  }
}

// The passes in three ISA variants (GCC function multiversioning picks one at load time). The clones evaluate the
// same expressions in the same order (no reassociation across lanes), but GCC contracts a·b + c into a fused
// multiply-add where the target has one (its default -ffp-contract=fast outside ISO C; of these clones only the
// AVX-512 one, measured in the object code), so an AVX-512 machine rounds differently from an AVX2 or SSE2 one.
// On one machine the results are the same bits for every thread count.
#define HAMLET_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
HAMLET_CLONES void pass1_float(const Step<float>& s, const Job<float>& x, int64_t b, int64_t e, double* sq,
                               float* p1, float* p2) {
  pass1(s, x, b, e, sq, p1, p2);
}
HAMLET_CLONES void pass1_double(const Step<double>& s, const Job<double>& x, int64_t b, int64_t e, double* sq,
                                double* p1, double* p2) {
  pass1(s, x, b, e, sq, p1, p2);
}
HAMLET_CLONES void pass2_float(const Job<float>& x, const Layer0<float>& l0, int64_t b, int64_t e, double* sq) {
  pass2(x, l0, b, e, sq);
}
HAMLET_CLONES void pass2_double(const Job<double>& x, const Layer0<double>& l0, int64_t b, int64_t e, double* sq) {
  pass2(x, l0, b, e, sq);
}
HAMLET_CLONES void pass3_float(const Step<float>& s, const Job<float>& x, const Layer0<float>& l0, int64_t b,
                               int64_t e) {
  pass3(s, x, l0, b, e);
}
HAMLET_CLONES void pass3_double(const Step<double>& s, const Job<double>& x, const Layer0<double>& l0, int64_t b,
                                int64_t e) {
  pass3(s, x, l0, b, e);
}
#undef HAMLET_CLONES
void pass1_of(const Step<float>& s, const Job<float>& x, int64_t b, int64_t e, double* sq, float* p1, float* p2) {
  pass1_float(s, x, b, e, sq, p1, p2);
}
void pass1_of(const Step<double>& s, const Job<double>& x, int64_t b, int64_t e, double* sq, double* p1, double* p2) {
  pass1_double(s, x, b, e, sq, p1, p2);
}
void pass2_of(const Job<float>& x, const Layer0<float>& l0, int64_t b, int64_t e, double* sq) {
  pass2_float(x, l0, b, e, sq);
}
void pass2_of(const Job<double>& x, const Layer0<double>& l0, int64_t b, int64_t e, double* sq) {
  pass2_double(x, l0, b, e, sq);
}
void pass3_of(const Step<float>& s, const Job<float>& x, const Layer0<float>& l0, int64_t b, int64_t e) {
  pass3_float(s, x, l0, b, e);
}
void pass3_of(const Step<double>& s, const Job<double>& x, const Layer0<double>& l0, int64_t b, int64_t e) {
  pass3_double(s, x, l0, b, e);
}

template <typename T>
std::vector<T> values_of(const at::Tensor& t) {
  const at::Tensor c = t.detach().contiguous();
  return {c.data_ptr<T>(), c.data_ptr<T>() + c.numel()};
}

template <typename T>
Step<T> make_step(const MlpLoptOptions& o, const TensorList& weights, const MlpLoptDecays& decays, int64_t t,
                  const at::TensorOptions& opts) {
  const std::size_t layers = static_cast<std::size_t>(o.hidden_layers) + 1;
  HAMLET_CHECK(weights.size() == 2 * layers + 3 && weights[0].dim() == 2 &&
                   weights[0].size(0) == kMlpLoptFeatures + kMlpLoptTimeFeatures,
               "mlp-lopt kernel: the weights do not fit hidden_layers = ", o.hidden_layers);
  Step<T> s;
  const std::vector<T> bm = values_of<T>(decays.momentum), bf = values_of<T>(decays.adafactor.clamp(0.0, 1.0)),
                       bv = values_of<T>(decays.rms.clamp(0.0, 1.0));
  for (int k = 0; k < 3; ++k) {
    s.beta_m[k] = bm[static_cast<std::size_t>(k)];
    s.one_m[k] = T(1) - s.beta_m[k];
    s.beta_f[k] = bf[static_cast<std::size_t>(k)];
    s.one_f[k] = T(1) - s.beta_f[k];
  }
  s.beta_v = bv[0];
  s.one_v = T(1) - s.beta_v;
  s.w.resize(layers);
  s.b.resize(layers);
  for (std::size_t l = 0; l < layers; ++l) {
    const at::Tensor& w = weights[2 * l];
    HAMLET_CHECK(w.dim() == 2 && weights[2 * l + 1].numel() == w.size(1) &&
                     (l == 0 || w.size(0) == s.width.back()) && (l + 1 < layers || w.size(1) == 2),
                 "mlp-lopt kernel: layer ", l, " has weights of shape ", w.sizes());
    s.width.push_back(w.size(1));
    s.max_width = std::max(s.max_width, w.size(1));
    if (l > 0) {
      s.w[l] = values_of<T>(w);
      s.b[l] = values_of<T>(weights[2 * l + 1]);
    }
  }
  // The time features are the same for every coordinate: their share of layer 0 is a bias (as the tensor path).
  const at::Tensor time = mlp_lopt_time_features(t).to(opts);
  s.b0 = values_of<T>(weights[1] + at::matmul(time, weights[0].narrow(0, kMlpLoptFeatures, kMlpLoptTimeFeatures)));
  s.w0 = values_of<T>(weights[0].narrow(0, 0, kMlpLoptFeatures));
  s.exp_mult = static_cast<T>(o.exp_mult);
  s.scale = static_cast<T>(o.step_mult * o.out_mul);
  return s;
}

// The chunk size for a slice of n coordinates: a function of n alone (see kChunkMultiple).
int64_t chunk_size(int64_t n) {
  int64_t chunks = chunk_count(n, kChunk);
  if (chunks <= 1) return kChunk;
  chunks = (chunks + kChunkMultiple - 1) / kChunkMultiple * kChunkMultiple;
  return (n + chunks * kBlock - 1) / (chunks * kBlock) * kBlock;
}

// One problem's slice of one tensor through the three passes.
template <typename T>
void run_job(const Step<T>& s, const Job<T>& x) {
  const int64_t chunk = chunk_size(x.n);
  const int64_t chunks = chunk_count(x.n, chunk), n1 = x.n1, n2 = x.n2, w0 = s.width[0];
  const auto un1 = static_cast<std::size_t>(n1), un2 = static_cast<std::size_t>(n2);
  std::vector<double> chunk_sq(static_cast<std::size_t>(chunks * kF), 0.0);
  std::vector<T> parts(x.factored ? static_cast<std::size_t>(chunks) * (un1 + un2) : 0);
  for_each_chunk(x.n, chunk, [&](int64_t c, int64_t begin, int64_t end) {
    T* part = x.factored ? parts.data() + static_cast<std::size_t>(c) * (un1 + un2) : nullptr;
    pass1_of(s, x, begin, end, chunk_sq.data() + c * kF, part, x.factored ? part + n1 : nullptr);
  });
  double sq[kF] = {};
  for (int64_t c = 0; c < chunks; ++c) {
    for (int64_t f = 0; f < kF; ++f) sq[f] += chunk_sq[static_cast<std::size_t>(c * kF + f)];
  }
  Layer0<T> l0;
  // Factored: R along the smaller axis d1 (the mean over the larger d0), C along d0; a stable ascending sort of
  // (n1, n2) puts d1 first on ties (factored_axes in mlp_lopt.cpp).
  const bool d1_first = n1 <= n2;
  const int64_t len_r = d1_first ? n1 : n2, len_c = d1_first ? n2 : n1;
  std::vector<T> r_next, c_next, row, col;  // [3][len_r], [3][len_c]
  if (x.factored) {
    std::vector<double> sum1(un1, 0.0), sum2(un2, 0.0);
    for (int64_t c = 0; c < chunks; ++c) {
      const T* part = parts.data() + static_cast<std::size_t>(c) * (un1 + un2);
      for (std::size_t i = 0; i < un1; ++i) sum1[i] += static_cast<double>(part[i]);
      for (std::size_t i = 0; i < un2; ++i) sum2[i] += static_cast<double>(part[un1 + i]);
    }
    const std::vector<double>& q_r = d1_first ? sum1 : sum2;
    const std::vector<double>& q_c = d1_first ? sum2 : sum1;
    r_next.resize(static_cast<std::size_t>(3 * len_r));
    row.resize(r_next.size());
    c_next.resize(static_cast<std::size_t>(3 * len_c));
    col.resize(c_next.size());
    const T over_d0 = static_cast<T>(len_c), over_d1 = static_cast<T>(len_r);
    for (int64_t k = 0; k < 3; ++k) {
      T sum_r = 0;
      double sq_a = 0, sq_ra = 0, sq_c = 0, sq_rc = 0;
      for (int64_t i = 0; i < len_r; ++i) {
        const T next = s.beta_f[k] * x.fac[3 * i + k] + s.one_f[k] * (static_cast<T>(q_r[static_cast<std::size_t>(i)]) / over_d0);
        x.fac_next[3 * i + k] = next;
        r_next[static_cast<std::size_t>(k * len_r + i)] = next;
        sum_r += next;
        const T ra = rsqrt(next + T(1e-8));
        sq_a += static_cast<double>(next) * next;
        sq_ra += static_cast<double>(ra) * ra;
      }
      const T r_mean = sum_r / over_d1;
      for (int64_t i = 0; i < len_r; ++i) {
        const auto idx = static_cast<std::size_t>(k * len_r + i);
        row[idx] = rsqrt(std::max(r_next[idx] / (r_mean + T(1e-9)), T(1e-9)));
      }
      for (int64_t j = 0; j < len_c; ++j) {
        const T next = s.beta_f[k] * x.fac[3 * (len_r + j) + k] +
                       s.one_f[k] * (static_cast<T>(q_c[static_cast<std::size_t>(j)]) / over_d1);
        x.fac_next[3 * (len_r + j) + k] = next;
        const auto idx = static_cast<std::size_t>(k * len_c + j);
        c_next[idx] = next;
        col[idx] = rsqrt(std::max(next, T(1e-9)));
        const T rc = rsqrt(next + T(1e-8));
        sq_c += static_cast<double>(next) * next;
        sq_rc += static_cast<double>(rc) * rc;
      }
      // Each R entry is broadcast over the len_c entries along d0, each C entry over the len_r along d1.
      sq[kA + k] = sq_a * static_cast<double>(len_c);
      sq[kRa + k] = sq_ra * static_cast<double>(len_c);
      sq[kC + k] = sq_c * static_cast<double>(len_r);
      sq[kRc + k] = sq_rc * static_cast<double>(len_r);
    }
    l0.f1 = d1_first ? row : col;
    l0.f2 = d1_first ? col : row;
    std::vector<double> chunk_sq2(static_cast<std::size_t>(chunks * 6), 0.0);
    for_each_chunk(x.n, chunk, [&](int64_t c, int64_t begin, int64_t end) {
      pass2_of(x, l0, begin, end, chunk_sq2.data() + c * 6);
    });
    for (int64_t c = 0; c < chunks; ++c) {
      for (int64_t k = 0; k < 3; ++k) {
        sq[kGS + k] += chunk_sq2[static_cast<std::size_t>(c * 6 + k)];
        sq[kMS + k] += chunk_sq2[static_cast<std::size_t>(c * 6 + 3 + k)];
      }
    }
  }
  // x / √(1e-5 + mean x²) per channel, folded into layer 0's rows.
  l0.w.resize(s.w0.size());
  for (int64_t f = 0; f < kF; ++f) {
    const T inv = static_cast<T>(1.0 / std::sqrt(sq[f] / static_cast<double>(x.n) + 1e-5));
    for (int64_t u = 0; u < w0; ++u) {
      const auto idx = static_cast<std::size_t>(f * w0 + u);
      l0.w[idx] = s.w0[idx] * inv;
    }
  }
  if (x.factored) {
    // The broadcast channels' share of layer 0: R's along d1, C's along d0; the bias goes with the axis-1 table.
    std::vector<T> t_r(static_cast<std::size_t>(w0 * len_r)), t_c(static_cast<std::size_t>(w0 * len_c));
    for (int64_t u = 0; u < w0; ++u) {
      for (int64_t i = 0; i < len_r; ++i) {
        T sum = 0;
        for (int64_t k = 0; k < 3; ++k) {
          const auto idx = static_cast<std::size_t>(k * len_r + i);
          sum += l0.w[static_cast<std::size_t>((kA + k) * w0 + u)] * r_next[idx] +
                 l0.w[static_cast<std::size_t>((kRa + k) * w0 + u)] * rsqrt(r_next[idx] + T(1e-8));
        }
        t_r[static_cast<std::size_t>(u * len_r + i)] = sum;
      }
      for (int64_t j = 0; j < len_c; ++j) {
        T sum = 0;
        for (int64_t k = 0; k < 3; ++k) {
          const auto idx = static_cast<std::size_t>(k * len_c + j);
          sum += l0.w[static_cast<std::size_t>((kC + k) * w0 + u)] * c_next[idx] +
                 l0.w[static_cast<std::size_t>((kRc + k) * w0 + u)] * rsqrt(c_next[idx] + T(1e-8));
        }
        t_c[static_cast<std::size_t>(u * len_c + j)] = sum;
      }
    }
    l0.t1 = d1_first ? t_r : t_c;
    l0.t2 = d1_first ? t_c : t_r;
    for (int64_t u = 0; u < w0; ++u) {
      for (int64_t i = 0; i < n1; ++i) l0.t1[static_cast<std::size_t>(u * n1 + i)] += s.b0[static_cast<std::size_t>(u)];
    }
  } else {
    l0.b = s.b0;
  }
  for_each_chunk(x.n, chunk, [&](int64_t, int64_t begin, int64_t end) { pass3_of(s, x, l0, begin, end); });
}

template <typename T>
optim::StepResult run(const MlpLoptOptions& o, const TensorList& weights, const MlpLoptDecays& decays,
                      const TensorList& params, const TensorList& grads, const optim::OptimizerState& state,
                      const at::TensorOptions& opts) {
  const Step<T> step = make_step<T>(o, weights, decays, state.step, opts);
  optim::StepResult result;
  result.state.step = state.step + 1;
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
                 "mlp-lopt kernel: the gradient or the state slots do not fit a parameter of shape ", p.sizes());
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
      run_job(step, x);
    }
    result.params.push_back(p_next);
    result.state.slots["m"].push_back(m_next);
    result.state.slots["v"].push_back(v_next);
    result.state.slots["fac"].push_back(fac_next);
  }
  return result;
}

}  // namespace

bool mlp_lopt_update_fused_applies(const TensorList& params, const TensorList& grads, const TensorList& weights,
                                   const MlpLoptDecays& decays, const optim::OptimizerState& state,
                                   const at::TensorOptions& opts) {
  if (params.empty() || grads.size() != params.size()) return false;
  if (!mlp_lopt_fused_applies(params, grads, decays, opts)) return false;
  for (const auto& w : weights) {
    if (w.requires_grad()) return false;
  }
  for (const auto& [name, slot] : state.slots) {
    for (const auto& x : slot) {
      if (x.requires_grad()) return false;
    }
  }
  for (const auto& p : params) {
    if (p.dim() < 1 || p.scalar_type() != opts.dtype()) return false;
  }
  return true;
}

optim::StepResult mlp_lopt_update_fused(const MlpLoptOptions& options, const TensorList& weights,
                                        const MlpLoptDecays& decays, const TensorList& params, const TensorList& grads,
                                        const optim::OptimizerState& state, const at::TensorOptions& opts) {
  for (const char* slot : {"m", "v", "fac"}) {
    const auto it = state.slots.find(slot);
    HAMLET_CHECK(it != state.slots.end() && it->second.size() == params.size(), "mlp-lopt: state has no slot '",
                 slot, "' for every parameter tensor (call init() first)");
  }
  HAMLET_CHECK(mlp_lopt_update_fused_applies(params, grads, weights, decays, state, opts),
               "mlp-lopt: the fused update needs CPU float32/float64 parameters of the compute dtype, per-problem rank "
               "<= 2 and no autograd");
  if (opts.dtype() == at::kDouble) return run<double>(options, weights, decays, params, grads, state, opts);
  return run<float>(options, weights, decays, params, grads, state, opts);
}

}  // namespace hamlet::learned
