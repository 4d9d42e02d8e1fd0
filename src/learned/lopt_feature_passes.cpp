#include "lopt_feature_passes.hpp"

#include <cmath>

#include "hamlet/core/parallel.hpp"

namespace hamlet::learned::lopt {
namespace {

// Lanes of a row sum: a sum into one scalar does not vectorise without reassociation, 16 partial sums do.
constexpr int64_t kLanes = 16;
// Chunks of a slice of more than one chunk (chunk_size).
constexpr int64_t kChunkMultiple = 8;

// Pass 1 over the chunk [begin, end): m', v' (and V' when not factored) written out; the channels' sums of squares
// into sq[28] (factored: the ten channels known here); for a factored slice the row sums of q into part1[n1] and
// the column sums into part2[n2] (both zeroed here).
template <typename T>
HAMLET_KERNEL_INLINE inline void pass1(const Decays<T>& s, const Job<T>& x, int64_t begin, int64_t end, double* sq,
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

// Pass 2 (factored slices) over [begin, end): the sums of squares of g·F_k and m_k·F_k into sq[6].
template <typename T>
HAMLET_KERNEL_INLINE inline void pass2(const Job<T>& x, const Layer0<T>& l0, int64_t begin, int64_t end, double* sq) {
  alignas(64) T lanes[6 * kBlock] = {};
  alignas(64) T scale[3 * kBlock];
  for (int64_t first = begin; first < end; first += kBlock) {
    const int64_t n = std::min(kBlock, end - first);
    factors_block<kBlock>(x, l0, first, n, scale);
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

// The passes in three ISA variants (GCC function multiversioning picks one at load time). The clones evaluate the
// same expressions in the same order (no reassociation across lanes), but GCC contracts a·b + c into a fused
// multiply-add where the target has one (its default -ffp-contract=fast outside ISO C; of these clones only the
// AVX-512 one, measured in the object code), so an AVX-512 machine rounds differently from an AVX2 or SSE2 one.
// On one machine the results are the same bits for every thread count.
#define HAMLET_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
HAMLET_CLONES void pass1_float(const Decays<float>& s, const Job<float>& x, int64_t b, int64_t e, double* sq,
                               float* p1, float* p2) {
  pass1(s, x, b, e, sq, p1, p2);
}
HAMLET_CLONES void pass1_double(const Decays<double>& s, const Job<double>& x, int64_t b, int64_t e, double* sq,
                                double* p1, double* p2) {
  pass1(s, x, b, e, sq, p1, p2);
}
HAMLET_CLONES void pass2_float(const Job<float>& x, const Layer0<float>& l0, int64_t b, int64_t e, double* sq) {
  pass2(x, l0, b, e, sq);
}
HAMLET_CLONES void pass2_double(const Job<double>& x, const Layer0<double>& l0, int64_t b, int64_t e, double* sq) {
  pass2(x, l0, b, e, sq);
}
#undef HAMLET_CLONES
void pass1_of(const Decays<float>& s, const Job<float>& x, int64_t b, int64_t e, double* sq, float* p1, float* p2) {
  pass1_float(s, x, b, e, sq, p1, p2);
}
void pass1_of(const Decays<double>& s, const Job<double>& x, int64_t b, int64_t e, double* sq, double* p1,
              double* p2) {
  pass1_double(s, x, b, e, sq, p1, p2);
}
void pass2_of(const Job<float>& x, const Layer0<float>& l0, int64_t b, int64_t e, double* sq) {
  pass2_float(x, l0, b, e, sq);
}
void pass2_of(const Job<double>& x, const Layer0<double>& l0, int64_t b, int64_t e, double* sq) {
  pass2_double(x, l0, b, e, sq);
}

template <typename T>
std::vector<T> values_of(const at::Tensor& t) {
  const at::Tensor c = t.detach().contiguous();
  return {c.data_ptr<T>(), c.data_ptr<T>() + c.numel()};
}

}  // namespace

int64_t chunk_size(int64_t n, int64_t max_chunk) {
  int64_t chunks = chunk_count(n, max_chunk);
  if (chunks <= 1) return max_chunk;
  chunks = (chunks + kChunkMultiple - 1) / kChunkMultiple * kChunkMultiple;
  return (n + chunks * kBlock - 1) / (chunks * kBlock) * kBlock;
}

template <typename T>
Decays<T> decays_of(const MlpLoptDecays& decays) {
  Decays<T> s;
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
  return s;
}

template <typename T>
Layer0<T> prepare_layer0(const Decays<T>& s, const Job<T>& x, const std::vector<T>& w0, const std::vector<T>& b0,
                         int64_t width) {
  HAMLET_CHECK(static_cast<int64_t>(w0.size()) == kF * width && static_cast<int64_t>(b0.size()) == width,
               "mlp-lopt features: a layer of width ", width, " needs [", kF, ", ", width, "] weights and [", width,
               "] biases");
  const int64_t chunk = chunk_size(x.n);
  const int64_t chunks = chunk_count(x.n, chunk), n1 = x.n1, n2 = x.n2;
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
  l0.width = width;
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
  // x / √(1e-5 + mean x²) per channel, folded into the layer's rows.
  l0.w.resize(w0.size());
  for (int64_t f = 0; f < kF; ++f) {
    const T inv = static_cast<T>(1.0 / std::sqrt(sq[f] / static_cast<double>(x.n) + 1e-5));
    l0.inv[f] = inv;
    for (int64_t u = 0; u < width; ++u) {
      const auto idx = static_cast<std::size_t>(f * width + u);
      l0.w[idx] = w0[idx] * inv;
    }
  }
  l0.w_units.resize(w0.size());
  for (int64_t u = 0; u < width; ++u) {
    for (int64_t f = 0; f < kF; ++f) {
      l0.w_units[static_cast<std::size_t>(u * kF + f)] = l0.w[static_cast<std::size_t>(f * width + u)];
    }
  }
  if (x.factored) {
    // The broadcast channels' share of the layer: R's along d1, C's along d0; the bias goes with the axis-1 table.
    std::vector<T> t_r(static_cast<std::size_t>(width * len_r)), t_c(static_cast<std::size_t>(width * len_c));
    for (int64_t u = 0; u < width; ++u) {
      for (int64_t i = 0; i < len_r; ++i) {
        T sum = 0;
        for (int64_t k = 0; k < 3; ++k) {
          const auto idx = static_cast<std::size_t>(k * len_r + i);
          sum += l0.w[static_cast<std::size_t>((kA + k) * width + u)] * r_next[idx] +
                 l0.w[static_cast<std::size_t>((kRa + k) * width + u)] * rsqrt(r_next[idx] + T(1e-8));
        }
        t_r[static_cast<std::size_t>(u * len_r + i)] = sum;
      }
      for (int64_t j = 0; j < len_c; ++j) {
        T sum = 0;
        for (int64_t k = 0; k < 3; ++k) {
          const auto idx = static_cast<std::size_t>(k * len_c + j);
          sum += l0.w[static_cast<std::size_t>((kC + k) * width + u)] * c_next[idx] +
                 l0.w[static_cast<std::size_t>((kRc + k) * width + u)] * rsqrt(c_next[idx] + T(1e-8));
        }
        t_c[static_cast<std::size_t>(u * len_c + j)] = sum;
      }
    }
    l0.t1 = d1_first ? t_r : t_c;
    l0.t2 = d1_first ? t_c : t_r;
    for (int64_t u = 0; u < width; ++u) {
      for (int64_t i = 0; i < n1; ++i) l0.t1[static_cast<std::size_t>(u * n1 + i)] += b0[static_cast<std::size_t>(u)];
    }
  } else {
    l0.b = b0;
  }
  return l0;
}

template Decays<float> decays_of<float>(const MlpLoptDecays&);
template Decays<double> decays_of<double>(const MlpLoptDecays&);
template Layer0<float> prepare_layer0<float>(const Decays<float>&, const Job<float>&, const std::vector<float>&,
                                             const std::vector<float>&, int64_t);
template Layer0<double> prepare_layer0<double>(const Decays<double>&, const Job<double>&, const std::vector<double>&,
                                               const std::vector<double>&, int64_t);

}  // namespace hamlet::learned::lopt
