#include "hamlet/learned/phnn_kernel.hpp"

#include <torch/csrc/autograd/custom_function.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <type_traits>
#include <vector>

#include "hamlet/core/error.hpp"
#include "hamlet/core/parallel.hpp"
#include "hamlet/learned/mlp_lopt_update_kernel.hpp"
#include "hamlet/learned/preprocess.hpp"
#include "kernel_math.hpp"
#include "lopt_feature_passes.hpp"
#include "update_chunks.hpp"

namespace hamlet::learned::ph {
namespace {

using kernel::exp_of;
using kernel::softplus_of;
using kernel::tanh_of;

constexpr int64_t kMaxDim = 4;  // d; the dissipation is 2d × 2d
constexpr int64_t kMaxPair = 2 * kMaxDim;
constexpr int64_t kMaxRaw = kMaxPair * (kMaxPair + 1) / 2;
// Rows per block. Every quantity of a block is stored as [component][kBlock], so each loop below runs over the
// block's rows with the same operation on contiguous values and the compiler vectorises it; one coordinate per
// iteration (the first version of this kernel) was slower than the tensor path.
constexpr int64_t kBlock = 64;

// ---- float32 lanes for the networks' hidden units (GCC vector extensions) ----
// The three networks read q, and each hidden unit feeds its outputs through one weight: with the rows of a block
// in registers (16 floats, one AVX-512 vector, two AVX2 or four SSE2 vectors in the clones below) and the units in
// the inner loop, every output is an accumulator that stays in a register across the units. The block-wide loops
// elsewhere in this file keep their sums in memory, which chains each unit's add behind the previous store.
constexpr int64_t kLanes = 16;
using kernel::exp_lanes;
using kernel::LaneF;
using kernel::LaneI;
using kernel::load_lanes;
using kernel::splat;
using kernel::store_lanes;
using kernel::tanh_of_neg2;


// A first-layer bias: shared [w] (stride 0) or per row, stored transposed [w, R] so a block reads it contiguously.
template <typename T>
struct Bias {
  const T* data = nullptr;
  int64_t rows = 0;  // 0: shared
  const T* unit(int64_t j, int64_t first) const { return rows == 0 ? data + j : data + j * rows + first; }
};

template <typename T>
struct Kernel {
  int64_t rows, d, w, n2;  // n2 = 2d
  const T *v1, *v2, *g1, *g2, *g2b, *d1, *d2, *d2b, *dconst, *minv;
  T v2b;
  const T *m1, *m2, *m2b;  // state mass network (m_state)
  Bias<T> v1b, g1b, d1b, m1b;
  bool d_state, d_softplus, m_state;
  T eps_d, eps_m, h;
  int64_t substeps;

  // Scratch of one block, [component][kBlock].
  struct Block {
    int64_t first = 0, n = 0;
    T q[kMaxDim][kBlock], p[kMaxDim][kBlock], a[kMaxDim][kBlock], b[kMaxDim][kBlock], g[kMaxDim][kBlock];
    T q_dot_sum[kMaxDim][kBlock], x[kMaxPair][kBlock], dx[kMaxPair][kBlock], l[kMaxPair * kMaxPair][kBlock];
    T dm[kMaxPair * kMaxPair][kBlock], raw[kMaxRaw][kBlock], v[kBlock], tmp[kBlock], gv[kMaxDim][kBlock];
    // State mass: its raw entries, factor L_M, M⁻¹(q) per row, y = L_Mᵀ p, ∂K/∂raw.
    T raw_m[kMaxDim * (kMaxDim + 1) / 2][kBlock], lm[kMaxDim * kMaxDim][kBlock], minv[kMaxDim * kMaxDim][kBlock];
    T y[kMaxDim][kBlock], dk_raw[kMaxDim * (kMaxDim + 1) / 2][kBlock];
    std::vector<T> s, sm;  // hidden units [w][kBlock]: the current network's, the mass network's
    // q at the start of the step; per-row diagnostics: H before and after the flow, ∇HᵀD∇H, bᵀG.
    T q0[kMaxDim][kBlock], e_before[kBlock], e_after[kBlock], dissipated[kBlock], supplied[kBlock];
  };

  // s = tanh(W x + c) for x [d][kBlock], W [w, d].
  HAMLET_KERNEL_INLINE void hidden_units(const T* weight, const Bias<T>& bias, const T (*x)[kBlock], Block& blk, T* units) const {
    for (int64_t j = 0; j < w; ++j) {
      T* s = units + j * kBlock;
      const T* c = bias.unit(j, blk.first);
      if (bias.rows == 0) {
        for (int64_t r = 0; r < kBlock; ++r) s[r] = c[0];
      } else {
        for (int64_t r = 0; r < blk.n; ++r) s[r] = c[r];
        for (int64_t r = blk.n; r < kBlock; ++r) s[r] = 0;
      }
      for (int64_t i = 0; i < d; ++i) {
        const T wji = weight[j * d + i];
        for (int64_t r = 0; r < kBlock; ++r) s[r] += wji * x[i][r];
      }
      for (int64_t r = 0; r < kBlock; ++r) s[r] = tanh_of(s[r]);
    }
  }

  // V(q) into blk.v and, when `grad`, ∂V/∂q into blk.gv.
  HAMLET_KERNEL_INLINE void potential(const T (*q)[kBlock], Block& blk, bool grad) const {
    hidden_units(v1, v1b, q, blk, blk.s.data());
    for (int64_t r = 0; r < kBlock; ++r) blk.v[r] = v2b;
    if (grad) {
      for (int64_t i = 0; i < d; ++i)
        for (int64_t r = 0; r < kBlock; ++r) blk.gv[i][r] = 0;
    }
    for (int64_t j = 0; j < w; ++j) {
      const T* s = blk.s.data() + j * kBlock;
      const T vj = v2[j];
      for (int64_t r = 0; r < kBlock; ++r) blk.v[r] += vj * s[r];
      if (!grad) continue;
      for (int64_t r = 0; r < kBlock; ++r) blk.tmp[r] = (T(1) - s[r] * s[r]) * vj;
      for (int64_t i = 0; i < d; ++i) {
        const T wji = v1[j * d + i];
        for (int64_t r = 0; r < kBlock; ++r) blk.gv[i][r] += blk.tmp[r] * wji;
      }
    }
  }

  // D(q) into blk.dm, [2d · 2d][kBlock] row-major.
  HAMLET_KERNEL_INLINE void dissipation(Block& blk) const {
    const int64_t nn = n2 * n2;
    if (!d_state) {
      for (int64_t k = 0; k < nn; ++k)
        for (int64_t r = 0; r < kBlock; ++r) blk.dm[k][r] = dconst[k];
      return;
    }
    hidden_units(d1, d1b, blk.q, blk, blk.s.data());
    const int64_t n_raw = n2 * (n2 + 1) / 2;
    for (int64_t k = 0; k < n_raw; ++k) {
      for (int64_t r = 0; r < kBlock; ++r) blk.raw[k][r] = d2b[k];
      for (int64_t j = 0; j < w; ++j) {
        const T wkj = d2[k * w + j];
        const T* s = blk.s.data() + j * kBlock;
        for (int64_t r = 0; r < kBlock; ++r) blk.raw[k][r] += wkj * s[r];
      }
    }
    dissipation_from_raw(blk);
  }

  // D = L Lᵀ + ε_D I from the raw entries in blk.raw, into blk.dm.
  HAMLET_KERNEL_INLINE void dissipation_from_raw(Block& blk) const {
    const int64_t nn = n2 * n2;
    // The factor in cholesky_from_raw's layout: the diagonal first, then the strictly-lower entries row-major.
    for (int64_t k = 0; k < nn; ++k)
      for (int64_t r = 0; r < kBlock; ++r) blk.l[k][r] = 0;
    int64_t next = n2;
    for (int64_t i = 0; i < n2; ++i) {
      // The branch outside the loop: inside it the select would compute the softplus for every row either way.
      if (d_softplus) {
        for (int64_t r = 0; r < kBlock; ++r) blk.l[i * n2 + i][r] = softplus_of(blk.raw[i][r]);
      } else {
        for (int64_t r = 0; r < kBlock; ++r) blk.l[i * n2 + i][r] = blk.raw[i][r];
      }
      for (int64_t j = 0; j < i; ++j, ++next)
        for (int64_t r = 0; r < kBlock; ++r) blk.l[i * n2 + j][r] = blk.raw[next][r];
    }
    for (int64_t i = 0; i < n2; ++i) {
      for (int64_t k = 0; k < n2; ++k) {
        T* out = blk.dm[i * n2 + k];
        for (int64_t r = 0; r < kBlock; ++r) out[r] = 0;
        for (int64_t j = 0; j <= std::min(i, k); ++j) {
          const T* li = blk.l[i * n2 + j];
          const T* lk = blk.l[k * n2 + j];
          for (int64_t r = 0; r < kBlock; ++r) out[r] += li[r] * lk[r];
        }
        if (i == k)
          for (int64_t r = 0; r < kBlock; ++r) out[r] += eps_d;
      }
    }
  }

  HAMLET_KERNEL_INLINE void forcing(Block& blk) const {
    hidden_units(g1, g1b, blk.q, blk, blk.s.data());
    for (int64_t i = 0; i < d; ++i) {
      for (int64_t r = 0; r < kBlock; ++r) blk.g[i][r] = g2b[i];
      for (int64_t j = 0; j < w; ++j) {
        const T wij = g2[i * w + j];
        const T* s = blk.s.data() + j * kBlock;
        for (int64_t r = 0; r < kBlock; ++r) blk.g[i][r] += wij * s[r];
      }
    }
  }

  // M⁻¹(q) of the state mass: raw = M2 tanh(M1 q + b) + b, L_M with a softplus diagonal, L_M L_Mᵀ + ε_M I per row;
  // keeps the hidden units and the factor for kinetic_grad.
  HAMLET_KERNEL_INLINE void mass_at(Block& blk) const {
    const int64_t n_raw = d * (d + 1) / 2;
    hidden_units(m1, m1b, blk.q, blk, blk.sm.data());
    for (int64_t k = 0; k < n_raw; ++k) {
      for (int64_t r = 0; r < kBlock; ++r) blk.raw_m[k][r] = m2b[k];
      for (int64_t j = 0; j < w; ++j) {
        const T wkj = m2[k * w + j];
        const T* s = blk.sm.data() + j * kBlock;
        for (int64_t r = 0; r < kBlock; ++r) blk.raw_m[k][r] += wkj * s[r];
      }
    }
    mass_from_raw(blk);
  }

  // L_M (softplus diagonal) and M⁻¹ = L_M L_Mᵀ + ε_M I per row from the raw entries in blk.raw_m.
  HAMLET_KERNEL_INLINE void mass_from_raw(Block& blk) const {
    for (int64_t k = 0; k < d * d; ++k)
      for (int64_t r = 0; r < kBlock; ++r) blk.lm[k][r] = 0;
    int64_t next = d;
    for (int64_t i = 0; i < d; ++i) {
      for (int64_t r = 0; r < kBlock; ++r) blk.lm[i * d + i][r] = softplus_of(blk.raw_m[i][r]);
      for (int64_t j = 0; j < i; ++j, ++next)
        for (int64_t r = 0; r < kBlock; ++r) blk.lm[i * d + j][r] = blk.raw_m[next][r];
    }
    for (int64_t i = 0; i < d; ++i) {
      for (int64_t k = 0; k < d; ++k) {
        T* out = blk.minv[i * d + k];
        for (int64_t r = 0; r < kBlock; ++r) out[r] = 0;
        for (int64_t j = 0; j <= std::min(i, k); ++j)
          for (int64_t r = 0; r < kBlock; ++r) out[r] += blk.lm[i * d + j][r] * blk.lm[k * d + j][r];
        if (i == k)
          for (int64_t r = 0; r < kBlock; ++r) out[r] += eps_m;
      }
    }
  }

  // b = M⁻¹ p.
  HAMLET_KERNEL_INLINE void mass_times_p(Block& blk) const {
    for (int64_t i = 0; i < d; ++i) {
      for (int64_t r = 0; r < kBlock; ++r) blk.b[i][r] = 0;
      for (int64_t k = 0; k < d; ++k) {
        if (m_state) {
          for (int64_t r = 0; r < kBlock; ++r) blk.b[i][r] += blk.minv[i * d + k][r] * blk.p[k][r];
        } else {
          const T m = minv[i * d + k];
          for (int64_t r = 0; r < kBlock; ++r) blk.b[i][r] += m * blk.p[k][r];
        }
      }
    }
  }

  // a = ∂V/∂q, plus ∂(½ pᵀ M⁻¹(q) p)/∂q for a state mass: with y = L_Mᵀ p, ∂K/∂raw holds p_i y_i σ(raw_i) on the
  // softplus diagonal and p_i y_j below it, and ∂K/∂q = M1ᵀ[(1 − s_M²) ⊙ (M2ᵀ ∂K/∂raw)] (phnn.hpp).
  HAMLET_KERNEL_INLINE void energy_gradient_q(Block& blk) const {
    for (int64_t i = 0; i < d; ++i)
      for (int64_t r = 0; r < kBlock; ++r) blk.a[i][r] = blk.gv[i][r];
    if (!m_state) return;
    for (int64_t j = 0; j < d; ++j) {
      for (int64_t r = 0; r < kBlock; ++r) blk.y[j][r] = 0;
      for (int64_t i = j; i < d; ++i)
        for (int64_t r = 0; r < kBlock; ++r) blk.y[j][r] += blk.lm[i * d + j][r] * blk.p[i][r];
    }
    int64_t next = d;
    for (int64_t i = 0; i < d; ++i) {
      for (int64_t r = 0; r < kBlock; ++r) {
        const T sig = T(1) / (T(1) + exp_of(-blk.raw_m[i][r]));
        blk.dk_raw[i][r] = blk.p[i][r] * blk.y[i][r] * sig;
      }
      for (int64_t j = 0; j < i; ++j, ++next)
        for (int64_t r = 0; r < kBlock; ++r) blk.dk_raw[next][r] = blk.p[i][r] * blk.y[j][r];
    }
    const int64_t n_raw = d * (d + 1) / 2;
    for (int64_t j = 0; j < w; ++j) {
      const T* s = blk.sm.data() + j * kBlock;
      for (int64_t r = 0; r < kBlock; ++r) blk.tmp[r] = 0;
      for (int64_t k = 0; k < n_raw; ++k) {
        const T wkj = m2[k * w + j];
        for (int64_t r = 0; r < kBlock; ++r) blk.tmp[r] += wkj * blk.dk_raw[k][r];
      }
      for (int64_t r = 0; r < kBlock; ++r) blk.tmp[r] *= T(1) - s[r] * s[r];
      for (int64_t i = 0; i < d; ++i) {
        const T wji = m1[j * d + i];
        for (int64_t r = 0; r < kBlock; ++r) blk.a[i][r] += blk.tmp[r] * wji;
      }
    }
  }

  // dx = D [a; b].
  HAMLET_KERNEL_INLINE void apply_dissipation(Block& blk) const {
    for (int64_t i = 0; i < d; ++i) {
      for (int64_t r = 0; r < kBlock; ++r) {
        blk.x[i][r] = blk.a[i][r];
        blk.x[d + i][r] = blk.b[i][r];
      }
    }
    for (int64_t i = 0; i < n2; ++i) {
      for (int64_t r = 0; r < kBlock; ++r) blk.dx[i][r] = 0;
      for (int64_t k = 0; k < n2; ++k) {
        const T* m = blk.dm[i * n2 + k];
        for (int64_t r = 0; r < kBlock; ++r) blk.dx[i][r] += m[r] * blk.x[k][r];
      }
    }
  }

  struct Out {
    T *q_dot, *p, *q, *e_before, *e_after, *dissipated, *supplied;
  };

  // −2 × a first-layer bias for 16 rows from r0 of the block: shared, or the rows' own (zero past the block's end).
  HAMLET_KERNEL_INLINE LaneF bias_lanes(const Bias<float>& bias, int64_t j, const Block& blk, int64_t r0) const {
    const float* c = bias.unit(j, blk.first);
    if (bias.rows == 0) return splat(-2.0f * c[0]);
    if (r0 + kLanes <= blk.n) return -2.0f * load_lanes(c + r0);
    float padded[kLanes] = {};
    for (int64_t r = r0; r < blk.n; ++r) padded[r - r0] = c[r];
    return -2.0f * load_lanes(padded);
  }

  // float32, feature width D: V(q) into blk.v, and when `all` also ∂V/∂q into blk.gv, G(q) into blk.g and (state
  // dissipation) D's raw entries into blk.raw; the same sums in the same order as potential(), forcing() and
  // dissipation(), 16 rows at a time with the outputs in registers; the first layers are computed as −2 (W x + b)
  // for tanh_of_neg2.
  template <int64_t D>
  HAMLET_KERNEL_INLINE void networks_lanes(Block& blk, bool all) const {
    constexpr int64_t n_raw = 2 * D * (2 * D + 1) / 2;
    for (int64_t r0 = 0; r0 < kBlock; r0 += kLanes) {
      LaneF q[D];
      for (int64_t i = 0; i < D; ++i) q[i] = load_lanes(&blk.q[i][r0]);
      LaneF v = splat(v2b), gv[D];
      for (int64_t i = 0; i < D; ++i) gv[i] = splat(0.0f);
      for (int64_t j = 0; j < w; ++j) {
        LaneF z = bias_lanes(v1b, j, blk, r0);
        for (int64_t i = 0; i < D; ++i) z += (-2.0f * v1[j * D + i]) * q[i];
        const LaneF t = tanh_of_neg2(z);
        const float vj = v2[j];
        v += vj * t;
        if (!all) continue;
        const LaneF f = (1.0f - t * t) * vj;
        for (int64_t i = 0; i < D; ++i) gv[i] += f * v1[j * D + i];
      }
      store_lanes(&blk.v[r0], v);
      if (!all) continue;
      for (int64_t i = 0; i < D; ++i) store_lanes(&blk.gv[i][r0], gv[i]);
      tanh_net_lanes<D, D>(g1, g1b, g2, g2b, q, blk, r0, blk.g, nullptr);
      if (d_state) tanh_net_lanes<D, n_raw>(d1, d1b, d2, d2b, q, blk, r0, blk.raw, nullptr);
    }
  }

  // A tanh network for 16 rows from r0 with q [D] in registers, its N outputs held in registers across the w units:
  // out[k] = b2[k] + Σ_j W2[k, j] tanh(W1 q + b1)_j (W1 [w, D], W2 [N, w]) into out [N][kBlock], the first layer
  // computed as −2 (W1 q + b1) for tanh_of_neg2; the units also into `units` [w][kBlock] when it is given.
  template <int64_t D, int64_t N>
  HAMLET_KERNEL_INLINE void tanh_net_lanes(const float* w1, const Bias<float>& b1, const float* w2, const float* b2,
                                           const LaneF (&q)[D], const Block& blk, int64_t r0, float (*out)[kBlock],
                                           float* units) const {
    LaneF acc[N];
    for (int64_t k = 0; k < N; ++k) acc[k] = splat(b2[k]);
    for (int64_t j = 0; j < w; ++j) {
      LaneF z = bias_lanes(b1, j, blk, r0);
      for (int64_t i = 0; i < D; ++i) z += (-2.0f * w1[j * D + i]) * q[i];
      const LaneF t = tanh_of_neg2(z);
      if (units != nullptr) store_lanes(units + j * kBlock + r0, t);
      for (int64_t k = 0; k < N; ++k) acc[k] += w2[k * w + j] * t;
    }
    for (int64_t k = 0; k < N; ++k) store_lanes(&out[k][r0], acc[k]);
  }

  // float32, feature width D: the state mass network's raw entries into blk.raw_m and its hidden units into blk.sm
  // (energy_gradient_q reads them), as mass_at() computes them, 16 rows at a time.
  template <int64_t D>
  HAMLET_KERNEL_INLINE void mass_lanes(Block& blk) const {
    constexpr int64_t n_raw = D * (D + 1) / 2;
    for (int64_t r0 = 0; r0 < kBlock; r0 += kLanes) {
      LaneF q[D];
      for (int64_t i = 0; i < D; ++i) q[i] = load_lanes(&blk.q[i][r0]);
      tanh_net_lanes<D, n_raw>(m1, m1b, m2, m2b, q, blk, r0, blk.raw_m, blk.sm.data());
    }
  }

  // D(q), G(q), V(q) and ∂V/∂q at blk.q (all), or V(q) alone; and M⁻¹(q) for a state mass (mass_at).
  HAMLET_KERNEL_INLINE void networks(Block& blk, bool all) const {
    if constexpr (std::is_same_v<T, float>) {
      switch (d) {
        case 1: networks_lanes<1>(blk, all); break;
        case 2: networks_lanes<2>(blk, all); break;
        case 3: networks_lanes<3>(blk, all); break;
        default: networks_lanes<4>(blk, all); break;
      }
      if (m_state) {
        switch (d) {
          case 1: mass_lanes<1>(blk); break;
          case 2: mass_lanes<2>(blk); break;
          case 3: mass_lanes<3>(blk); break;
          default: mass_lanes<4>(blk); break;
        }
        mass_from_raw(blk);
      }
      if (!all) return;
      if (d_state) {
        dissipation_from_raw(blk);
      } else {
        for (int64_t k = 0; k < n2 * n2; ++k)
          for (int64_t r = 0; r < kBlock; ++r) blk.dm[k][r] = dconst[k];
      }
    } else {
      if (!all) {
        potential(blk.q, blk, /*grad=*/false);
        if (m_state) mass_at(blk);
        return;
      }
      dissipation(blk);
      forcing(blk);
      potential(blk.q, blk, /*grad=*/true);
      if (m_state) mass_at(blk);
    }
  }

  // The K substeps from blk.q, blk.p (loaded by the caller, zero in the padding rows): leaves q̂ in blk.q, p' in
  // blk.p, the summed substep velocities in blk.q_dot_sum and the per-row diagnostics in blk.e_before, e_after,
  // dissipated and supplied.
  HAMLET_KERNEL_INLINE void integrate(Block& blk) const {
    for (int64_t step = 0; step < substeps; ++step) {
      networks(blk, /*all=*/true);
      mass_times_p(blk);
      energy_gradient_q(blk);
      apply_dissipation(blk);
      if (step == 0) {
        // Components outside, rows inside, so that the loops vectorise (the sums keep their order over i).
        for (int64_t r = 0; r < kBlock; ++r) {
          blk.e_before[r] = 0;
          blk.supplied[r] = 0;
          blk.dissipated[r] = 0;
        }
        for (int64_t i = 0; i < d; ++i) {
          for (int64_t r = 0; r < kBlock; ++r) {
            blk.e_before[r] += blk.p[i][r] * blk.b[i][r];
            blk.supplied[r] += blk.b[i][r] * blk.g[i][r];
          }
        }
        for (int64_t i = 0; i < n2; ++i)
          for (int64_t r = 0; r < kBlock; ++r) blk.dissipated[r] += blk.x[i][r] * blk.dx[i][r];
        for (int64_t r = 0; r < kBlock; ++r) blk.e_before[r] = blk.v[r] + T(0.5) * blk.e_before[r];
      }
      for (int64_t i = 0; i < d; ++i)
        for (int64_t r = 0; r < kBlock; ++r) blk.p[i][r] = blk.p[i][r] + h * (-blk.a[i][r] - blk.dx[d + i][r] + blk.g[i][r]);
      // q̇ at (q, p'): ∇V(q) and M⁻¹(q) are unchanged; b and the kinetic part of ∂H/∂q move with p.
      mass_times_p(blk);
      energy_gradient_q(blk);
      apply_dissipation(blk);
      for (int64_t i = 0; i < d; ++i) {
        for (int64_t r = 0; r < kBlock; ++r) {
          const T q_dot = blk.b[i][r] - blk.dx[i][r];
          blk.q[i][r] = blk.q[i][r] + h * q_dot;
          blk.q_dot_sum[i][r] = step == 0 ? q_dot : blk.q_dot_sum[i][r] + q_dot;
        }
      }
    }
    if (substeps > 1) {
      for (int64_t i = 0; i < d; ++i)
        for (int64_t r = 0; r < kBlock; ++r) blk.q_dot_sum[i][r] = blk.q_dot_sum[i][r] / static_cast<T>(substeps);
    }
    networks(blk, /*all=*/false);
    mass_times_p(blk);
    for (int64_t r = 0; r < kBlock; ++r) blk.e_after[r] = 0;
    for (int64_t i = 0; i < d; ++i)
      for (int64_t r = 0; r < kBlock; ++r) blk.e_after[r] += blk.p[i][r] * blk.b[i][r];
    for (int64_t r = 0; r < kBlock; ++r) blk.e_after[r] = blk.v[r] + T(0.5) * blk.e_after[r];
  }

  HAMLET_KERNEL_INLINE void run_block(const T* q_in, const T* p_in, const Out& out, Block& blk) const {
    const int64_t n = blk.n, first = blk.first;
    for (int64_t i = 0; i < d; ++i) {
      for (int64_t r = 0; r < kBlock; ++r) {
        const bool in = r < n;
        blk.q[i][r] = in ? q_in[(first + r) * d + i] : T(0);
        blk.p[i][r] = in ? p_in[(first + r) * d + i] : T(0);
      }
    }
    integrate(blk);
    for (int64_t r = 0; r < n; ++r) {
      out.e_before[first + r] = blk.e_before[r];
      out.dissipated[first + r] = blk.dissipated[r];
      out.supplied[first + r] = blk.supplied[r];
      out.e_after[first + r] = blk.e_after[r];
      for (int64_t i = 0; i < d; ++i) {
        out.q_dot[(first + r) * d + i] = blk.q_dot_sum[i][r];
        out.p[(first + r) * d + i] = blk.p[i][r];
        out.q[(first + r) * d + i] = blk.q[i][r];
      }
    }
  }

  // ---- The whole evaluation update of one work item (fused_update) ----

  struct Readout {
    T wu[2][2 * kMaxDim];  // W_u, [outputs, 2d]
    bool exp = false;      // u = δ · exp(exp_mult · μ) from two outputs, else u = the one output
    T exp_mult = 0, out_mul = 0;
    bool preprocess = false;  // q = P(g) (d = 2), else q = g (d = 1)
  };
  struct Item {
    const T *g, *p, *theta;  // n gradients, n × d momenta, n parameters
    T *theta_out, *p_out;
    int64_t n;
  };
  // Per-item sums of the four per-row diagnostics, each over the item's rows in a fixed order.
  struct Sums {
    double e_before = 0, e_after = 0, dissipated = 0, supplied = 0;
  };
  // phnn-features' scratch of one block: the feature channels, the Adafactor factors, and the per-row first-layer
  // biases of G then D, [width][kBlock].
  struct FeatureScratch {
    T feat[lopt::kF][kBlock], scale[3][kBlock];
    std::vector<T> ctx;
  };

  // The rows of one work item block by block: load(first, n) puts the block's q into blk.q (zero past the item's
  // end) and whatever the networks read per row where they read it, then the K substeps, the readout, θ' and p'
  // written, the diagnostics summed.
  template <typename Load>
  HAMLET_KERNEL_INLINE Sums run_rows(const Item& it, const Readout& ro, Block& blk, const Load& load) const {
    // Per-lane partial sums (a sum into one scalar does not vectorise), added in lane order at the end.
    double acc[4][kBlock] = {};
    for (int64_t first = 0; first < it.n; first += kBlock) {
      const int64_t n = std::min(kBlock, it.n - first);
      blk.first = 0;
      blk.n = n;
      load(first, n);
      if (d == 1 && n == kBlock) {
        for (int64_t r = 0; r < kBlock; ++r) blk.p[0][r] = it.p[first + r];
      } else {
        for (int64_t i = 0; i < d; ++i) {
          for (int64_t r = 0; r < kBlock; ++r) blk.p[i][r] = 0;
          for (int64_t r = 0; r < n; ++r) blk.p[i][r] = it.p[(first + r) * d + i];
        }
      }
      for (int64_t i = 0; i < d; ++i)
        for (int64_t r = 0; r < kBlock; ++r) blk.q0[i][r] = blk.q[i][r];
      integrate(blk);
      // u = [q̇ | q] W_uᵀ (and the exp readout), θ' = θ + out_mul · u.
      for (int64_t o = 0; o < (ro.exp ? 2 : 1); ++o) {
        T* out = o == 0 ? blk.tmp : blk.v;  // δ (or u) and μ; V is not needed any more
        for (int64_t r = 0; r < kBlock; ++r) out[r] = 0;
        for (int64_t i = 0; i < d; ++i) {
          const T wq = ro.wu[o][i];
          for (int64_t r = 0; r < kBlock; ++r) out[r] += wq * blk.q_dot_sum[i][r];
        }
        for (int64_t i = 0; i < d; ++i) {
          const T wq = ro.wu[o][d + i];
          for (int64_t r = 0; r < kBlock; ++r) out[r] += wq * blk.q0[i][r];
        }
      }
      if (ro.exp) {
        for (int64_t r = 0; r < kBlock; ++r) blk.tmp[r] = blk.tmp[r] * exp_of(ro.exp_mult * blk.v[r]);
      }
      for (int64_t r = 0; r < n; ++r) it.theta_out[first + r] = it.theta[first + r] + blk.tmp[r] * ro.out_mul;
      if (d == 1) {
        for (int64_t r = 0; r < n; ++r) it.p_out[first + r] = blk.p[0][r];
      } else {
        for (int64_t r = 0; r < n; ++r)
          for (int64_t i = 0; i < d; ++i) it.p_out[(first + r) * d + i] = blk.p[i][r];
      }
      for (int64_t r = 0; r < kBlock; ++r) {
        const bool in = r < n;
        acc[0][r] += in ? static_cast<double>(blk.e_before[r]) : 0.0;
        acc[1][r] += in ? static_cast<double>(blk.e_after[r]) : 0.0;
        acc[2][r] += in ? static_cast<double>(blk.dissipated[r]) : 0.0;
        acc[3][r] += in ? static_cast<double>(blk.supplied[r]) : 0.0;
      }
    }
    Sums sums;
    for (int64_t r = 0; r < kBlock; ++r) {
      sums.e_before += acc[0][r];
      sums.e_after += acc[1][r];
      sums.dissipated += acc[2][r];
      sums.supplied += acc[3][r];
    }
    return sums;
  }

  // q = P(g) or g.
  HAMLET_KERNEL_INLINE Sums run_item(const Item& it, const Readout& ro, Block& blk) const {
    return run_rows(it, ro, blk, [&](int64_t first, int64_t n) HAMLET_KERNEL_INLINE {
      // Zero past the item's end (whole blocks copy without a condition, which vectorises).
      T* g_in = blk.tmp;
      if (n == kBlock) {
        for (int64_t r = 0; r < kBlock; ++r) g_in[r] = it.g[first + r];
      } else {
        for (int64_t r = 0; r < kBlock; ++r) g_in[r] = 0;
        for (int64_t r = 0; r < n; ++r) g_in[r] = it.g[first + r];
      }
      if (ro.preprocess) {
        for (int64_t r = 0; r < kBlock; ++r) {
          T q[2];
          kernel::preprocess_select(g_in[r], kPreprocessP, q);
          blk.q[0][r] = r < n ? q[0] : T(0);
          blk.q[1][r] = r < n ? q[1] : T(0);
        }
      } else {
        for (int64_t r = 0; r < kBlock; ++r) blk.q[0][r] = g_in[r];
      }
    });
  }

  // float32 lopt::layer0_add_features over a whole block, 16 rows at a time: the block's channels are loaded once
  // and each unit's sum stays in a register across them (the generic loop stores and reloads it per channel); the
  // same sums in the same order. Rows past the block's end add whatever feat holds there; nothing reads them.
  template <bool Factored>
  HAMLET_KERNEL_INLINE void context_lanes(const lopt::Layer0<float>& l0, const float (*feat)[kBlock],
                                          float* h) const {
    constexpr int64_t channels = Factored ? lopt::kLocalCount : lopt::kF;
    const int64_t width = l0.width;
    for (int64_t r0 = 0; r0 < kBlock; r0 += kLanes) {
      LaneF xs[channels];
#pragma GCC unroll 32
      for (int64_t c = 0; c < channels; ++c) xs[c] = load_lanes(&feat[Factored ? lopt::kLocal[c] : c][r0]);
      for (int64_t u = 0; u < width; ++u) {
        const float* w = l0.w_units.data() + u * lopt::kF;
        LaneF acc = load_lanes(h + u * kBlock + r0);
#pragma GCC unroll 32
        for (int64_t c = 0; c < channels; ++c) acc += w[Factored ? lopt::kLocal[c] : c] * xs[c];
        store_lanes(h + u * kBlock + r0, acc);
      }
    }
  }

  // phnn-features: the rows [offset, offset + it.n) of the feature job x. Per block, the normalised features' layer
  // l0 (G's first-layer bias plus z's share, then D's) goes to fs.ctx, which this kernel must read as its per-row G
  // and D biases (Bias rows = kBlock), and q = z_0 = g / rms(g).
  HAMLET_KERNEL_INLINE Sums run_features_item(const Item& it, const Readout& ro, Block& blk, const lopt::Job<T>& x,
                                              const lopt::Layer0<T>& l0, int64_t offset, FeatureScratch& fs) const {
    return run_rows(it, ro, blk, [&](int64_t first, int64_t n) HAMLET_KERNEL_INLINE {
      lopt::layer0_start<kBlock>(x, l0, offset + first, n, fs.scale[0], fs.ctx.data());
      lopt::features_block<kBlock>(x, offset + first, n, fs.feat[0], fs.scale[0]);
      if constexpr (std::is_same_v<T, float>) {
        if (x.factored) {
          context_lanes<true>(l0, fs.feat, fs.ctx.data());
        } else {
          context_lanes<false>(l0, fs.feat, fs.ctx.data());
        }
      } else {
        lopt::layer0_add_features<kBlock>(l0, x.factored, n, fs.feat[0], fs.ctx.data());
      }
      const T inv = l0.inv[lopt::kG];
      const T* g = x.g + offset + first;
      if (n == kBlock) {
        for (int64_t r = 0; r < kBlock; ++r) blk.q[0][r] = g[r] * inv;
      } else {
        for (int64_t r = 0; r < kBlock; ++r) blk.q[0][r] = 0;
        for (int64_t r = 0; r < n; ++r) blk.q[0][r] = g[r] * inv;
      }
    });
  }

  std::unique_ptr<Block> new_block() const {
    auto blk = std::make_unique<Block>();
    blk->s.assign(static_cast<std::size_t>(w * kBlock), T(0));
    blk->sm.assign(static_cast<std::size_t>(w * kBlock), T(0));
    return blk;
  }

  HAMLET_KERNEL_INLINE void run(const T* q_in, const T* p_in, const Out& out) const {
    auto blk = std::make_unique<Block>();
    blk->s.assign(static_cast<std::size_t>(w * kBlock), T(0));
    blk->sm.assign(static_cast<std::size_t>(w * kBlock), T(0));
    for (int64_t first = 0; first < rows; first += kBlock) {
      blk->first = first;
      blk->n = std::min(kBlock, rows - first);
      run_block(q_in, p_in, out, *blk);
    }
  }

  // ---- Backward of one substep (K = 1) with a state dissipation and a constant or state mass (phnn_kernel.hpp) ----

  // Where each weight's cotangent sits among the per-lane accumulators ([offset + k][kBlock]); the constant M⁻¹ or
  // the M network's weights, whichever the step has (the other takes no room).
  struct AccLayout {
    int64_t v1, v1b, v2, g1, g1b, g2, g2b, d1, d1b, d2, d2b, minv, m1, m1b, m2, m2b, total;
  };
  AccLayout acc_layout() const {
    const int64_t n_raw = n2 * (n2 + 1) / 2;
    AccLayout a{};
    int64_t at = 0;
    const auto next = [&at](int64_t n) { const int64_t here = at; at += n; return here; };
    a.v1 = next(w * d);
    a.v1b = next(w);
    a.v2 = next(w);
    a.g1 = next(w * d);
    a.g1b = next(w);
    a.g2 = next(d * w);
    a.g2b = next(d);
    a.d1 = next(w * d);
    a.d1b = next(w);
    a.d2 = next(n_raw * w);
    a.d2b = next(n_raw);
    const int64_t w_m = m_state ? w : 0, n_m = m_state ? d * (d + 1) / 2 : 0;
    a.minv = next(m_state ? 0 : d * d);
    a.m1 = next(w_m * d);
    a.m1b = next(w_m);
    a.m2 = next(n_m * w_m);
    a.m2b = next(n_m);
    a.total = at;
    return a;
  }

  struct GradOut {
    T *q, *p;          // [R, d]
    T* acc;            // [layout.total][kBlock], summed over the lanes by the caller
    T *v1b_rows, *g1b_rows, *d1b_rows, *m1b_rows;  // [R, w] for a per-row bias (then not in acc), else null
  };

  // Scratch of the backward pass of one block, [component][kBlock].
  struct BackBlock {
    std::vector<T> s_v, s_g, s_d, z_bar;  // hidden units [w][kBlock]; one net's hidden cotangent
    T x0[kMaxPair][kBlock], y0[kMaxPair][kBlock], pn[kMaxDim][kBlock], x1[kMaxPair][kBlock], y1[kMaxPair][kBlock];
    T qd_bar[kMaxDim][kBlock], pn_bar[kMaxDim][kBlock], y_bar[kMaxPair][kBlock], d_bar[kMaxPair * kMaxPair][kBlock];
    T a_bar[kMaxDim][kBlock], b_bar[kMaxDim][kBlock], p_bar[kMaxDim][kBlock], g_bar[kMaxDim][kBlock];
    T q_bar[kMaxDim][kBlock], raw_bar[kMaxRaw][kBlock], c[kBlock];
    // State mass: p kept while the forward runs at p'; ∂K/∂raw and y = L_Mᵀ p at p (0) and at p' (1); ā of the
    // kinetic gradient at p (at p' it is the first ā); cotangents of M⁻¹, L_M, the raw entries, ∂K/∂raw and y;
    // s̄_M from the kinetic gradients [w][kBlock]; two per-unit temporaries.
    static constexpr int64_t kMaxMass = kMaxDim * (kMaxDim + 1) / 2;
    T p0[kMaxDim][kBlock], k0[kMaxMass][kBlock], k1[kMaxMass][kBlock], ym0[kMaxDim][kBlock], ym1[kMaxDim][kBlock];
    T a0_bar[kMaxDim][kBlock], minv_bar[kMaxDim * kMaxDim][kBlock], lm_bar[kMaxDim * kMaxDim][kBlock];
    T rawm_bar[kMaxMass][kBlock], k_bar[kMaxMass][kBlock], ym_bar[kMaxDim][kBlock], t[kBlock], u_bar[kBlock];
    std::vector<T> sm_bar;
  };

  // y = D x for x [n2][kBlock], D = blk.dm.
  HAMLET_KERNEL_INLINE void times_d(const Block& blk, const T (*x)[kBlock], T (*y)[kBlock]) const {
    for (int64_t i = 0; i < n2; ++i) {
      for (int64_t r = 0; r < kBlock; ++r) y[i][r] = 0;
      for (int64_t k = 0; k < n2; ++k)
        for (int64_t r = 0; r < kBlock; ++r) y[i][r] += blk.dm[i * n2 + k][r] * x[k][r];
    }
  }

  // The backward of a first layer s = tanh(W q + c) given ∂/∂s in bb.z_bar (overwritten by ∂/∂(Wq + c)):
  // W̄ += z̄ qᵀ, c̄ += z̄ (into acc, or per row), q̄ += Wᵀ z̄.
  HAMLET_KERNEL_INLINE void first_layer_backward(const T* weight, const std::vector<T>& units, int64_t acc_w,
                                                 int64_t acc_b, T* bias_rows, const Block& blk, BackBlock& bb,
                                                 const GradOut& g) const {
    for (int64_t j = 0; j < w; ++j) {
      T* z = bb.z_bar.data() + j * kBlock;
      const T* u = units.data() + j * kBlock;
      for (int64_t r = 0; r < kBlock; ++r) z[r] *= T(1) - u[r] * u[r];
      for (int64_t i = 0; i < d; ++i) {
        T* acc = g.acc + (acc_w + j * d + i) * kBlock;
        const T wji = weight[j * d + i];
        for (int64_t r = 0; r < kBlock; ++r) {
          acc[r] += z[r] * blk.q[i][r];
          bb.q_bar[i][r] += wji * z[r];
        }
      }
      if (bias_rows != nullptr) {
        for (int64_t r = 0; r < blk.n; ++r) bias_rows[(blk.first + r) * w + j] = z[r];
      } else {
        T* acc = g.acc + (acc_b + j) * kBlock;
        for (int64_t r = 0; r < kBlock; ++r) acc[r] += z[r];
      }
    }
  }

  // The backward of an output layer y = W s + b (W [n_out, w]) for ȳ = cot: W̄ += ȳ sᵀ, b̄ += ȳ (into acc) and
  // s̄ = Wᵀ ȳ into bb.z_bar.
  HAMLET_KERNEL_INLINE void output_layer_backward(const T* weight, int64_t n_out, const T (*cot)[kBlock],
                                                  const std::vector<T>& units, int64_t acc_w, int64_t acc_b,
                                                  BackBlock& bb, const GradOut& g) const {
    for (int64_t j = 0; j < w; ++j) {
      T* z = bb.z_bar.data() + j * kBlock;
      const T* u = units.data() + j * kBlock;
      for (int64_t r = 0; r < kBlock; ++r) z[r] = 0;
      for (int64_t k = 0; k < n_out; ++k) {
        const T wkj = weight[k * w + j];
        T* acc = g.acc + (acc_w + k * w + j) * kBlock;
        for (int64_t r = 0; r < kBlock; ++r) {
          z[r] += wkj * cot[k][r];
          acc[r] += cot[k][r] * u[r];
        }
      }
    }
    for (int64_t k = 0; k < n_out; ++k) {
      T* acc = g.acc + (acc_b + k) * kBlock;
      for (int64_t r = 0; r < kBlock; ++r) acc[r] += cot[k][r];
    }
  }

  // The backward of b = M⁻¹ p (constant M⁻¹ [d, d]) for b̄: p̄ += M⁻ᵀ b̄, M̄ += b̄ pᵀ (acc: [d · d][kBlock]).
  HAMLET_KERNEL_INLINE void mass_backward(const T (*b_bar)[kBlock], const T (*p)[kBlock], T (*p_bar)[kBlock],
                                          T* acc_minv) const {
    for (int64_t k = 0; k < d; ++k) {
      for (int64_t i = 0; i < d; ++i) {
        const T m = minv[i * d + k];
        T* acc = acc_minv + (i * d + k) * kBlock;
        for (int64_t r = 0; r < kBlock; ++r) {
          p_bar[k][r] += m * b_bar[i][r];
          acc[r] += b_bar[i][r] * p[k][r];
        }
      }
    }
  }

  // The backward of b = M⁻¹(q) p with the state mass (per row, symmetric) for b̄: p̄ += M⁻¹ b̄, M̄ += b̄ pᵀ.
  HAMLET_KERNEL_INLINE void state_mass_backward(const T (*b_bar)[kBlock], const T (*p)[kBlock], T (*p_bar)[kBlock],
                                                const Block& blk, BackBlock& bb) const {
    for (int64_t k = 0; k < d; ++k) {
      for (int64_t i = 0; i < d; ++i) {
        const T* m = blk.minv[i * d + k];
        T* mb = bb.minv_bar[i * d + k];
        for (int64_t r = 0; r < kBlock; ++r) {
          p_bar[k][r] += m[r] * b_bar[i][r];
          mb[r] += b_bar[i][r] * p[k][r];
        }
      }
    }
  }

  // The backward of the kinetic part of a, ∂K/∂q = M1ᵀ u with u = (1 − s_M²) ⊙ t, t = M2ᵀ k, at momenta p, for ā;
  // k = ∂K/∂raw and y = L_Mᵀ p as energy_gradient_q left them at p. These are the second derivatives of K through
  // the M network: M̄1 += u āᵀ and ū = M1 ā; t̄ = (1 − s_M²) ⊙ ū and s̄_M += −2 s_M ⊙ t ⊙ ū (into bb.sm_bar);
  // M̄2 += k t̄ᵀ and k̄ = M2 t̄; then k = k(raw, p, y) (diagonal p_i y_i σ(raw_i), below p_i y_j) into p̄, ȳ and
  // raw̄ (bb.rawm_bar, σ' = σ(1 − σ)), and y = L_Mᵀ p into L̄_M (bb.lm_bar) and p̄.
  HAMLET_KERNEL_INLINE void kinetic_grad_backward(const T (*p)[kBlock], const T (*k)[kBlock], const T (*y)[kBlock],
                                                  const T (*a_bar)[kBlock], T (*p_bar)[kBlock], const Block& blk,
                                                  BackBlock& bb, const GradOut& g, const AccLayout& L) const {
    const int64_t n_m = d * (d + 1) / 2;
    for (int64_t c = 0; c < n_m; ++c)
      for (int64_t r = 0; r < kBlock; ++r) bb.k_bar[c][r] = 0;
    for (int64_t j = 0; j < w; ++j) {
      const T* s = blk.sm.data() + j * kBlock;
      T* sb = bb.sm_bar.data() + j * kBlock;
      for (int64_t r = 0; r < kBlock; ++r) {
        bb.t[r] = 0;
        bb.u_bar[r] = 0;
      }
      for (int64_t c = 0; c < n_m; ++c) {
        const T wcj = m2[c * w + j];
        for (int64_t r = 0; r < kBlock; ++r) bb.t[r] += wcj * k[c][r];
      }
      for (int64_t i = 0; i < d; ++i) {
        const T wji = m1[j * d + i];
        T* acc = g.acc + (L.m1 + j * d + i) * kBlock;
        for (int64_t r = 0; r < kBlock; ++r) {
          acc[r] += (T(1) - s[r] * s[r]) * bb.t[r] * a_bar[i][r];
          bb.u_bar[r] += wji * a_bar[i][r];
        }
      }
      for (int64_t r = 0; r < kBlock; ++r) {
        sb[r] += T(-2) * s[r] * bb.t[r] * bb.u_bar[r];
        bb.u_bar[r] *= T(1) - s[r] * s[r];  // t̄ from here on
      }
      for (int64_t c = 0; c < n_m; ++c) {
        const T wcj = m2[c * w + j];
        T* acc = g.acc + (L.m2 + c * w + j) * kBlock;
        for (int64_t r = 0; r < kBlock; ++r) {
          acc[r] += k[c][r] * bb.u_bar[r];
          bb.k_bar[c][r] += wcj * bb.u_bar[r];
        }
      }
    }
    for (int64_t i = 0; i < d; ++i)
      for (int64_t r = 0; r < kBlock; ++r) bb.ym_bar[i][r] = 0;
    int64_t next = d;
    for (int64_t i = 0; i < d; ++i) {
      for (int64_t r = 0; r < kBlock; ++r) {
        const T sig = T(1) / (T(1) + exp_of(-blk.raw_m[i][r]));
        const T kb = bb.k_bar[i][r];
        p_bar[i][r] += kb * y[i][r] * sig;
        bb.ym_bar[i][r] += kb * p[i][r] * sig;
        bb.rawm_bar[i][r] += kb * p[i][r] * y[i][r] * sig * (T(1) - sig);
      }
      for (int64_t j = 0; j < i; ++j, ++next) {
        for (int64_t r = 0; r < kBlock; ++r) {
          p_bar[i][r] += bb.k_bar[next][r] * y[j][r];
          bb.ym_bar[j][r] += bb.k_bar[next][r] * p[i][r];
        }
      }
    }
    for (int64_t i = 0; i < d; ++i) {
      for (int64_t j = 0; j <= i; ++j) {
        for (int64_t r = 0; r < kBlock; ++r) {
          bb.lm_bar[i * d + j][r] += bb.ym_bar[j][r] * p[i][r];
          p_bar[i][r] += blk.lm[i * d + j][r] * bb.ym_bar[j][r];
        }
      }
    }
  }

  // The backward of the M network from M̄ (bb.minv_bar), L̄_M (bb.lm_bar), raw̄ (bb.rawm_bar) and s̄_M (bb.sm_bar):
  // M⁻¹ = L_M L_Mᵀ + ε_M I adds (M̄ + M̄ᵀ) L_M to L̄_M on the lower triangle, the softplus diagonal takes σ(raw),
  // then raw = M2 s_M + b and s_M = tanh(M1 q + c) (q̄ += M1ᵀ z̄).
  HAMLET_KERNEL_INLINE void mass_network_backward(const Block& blk, BackBlock& bb, const GradOut& g,
                                                  const AccLayout& L) const {
    const int64_t n_m = d * (d + 1) / 2;
    int64_t next = d;
    for (int64_t i = 0; i < d; ++i) {
      for (int64_t j = 0; j <= i; ++j) {
        T* lb = bb.lm_bar[i * d + j];
        for (int64_t k = j; k < d; ++k)  // L_M[k][j] = 0 for k < j
          for (int64_t r = 0; r < kBlock; ++r)
            lb[r] += (bb.minv_bar[i * d + k][r] + bb.minv_bar[k * d + i][r]) * blk.lm[k * d + j][r];
        if (j == i) {
          for (int64_t r = 0; r < kBlock; ++r) bb.rawm_bar[i][r] += lb[r] / (T(1) + exp_of(-blk.raw_m[i][r]));
        } else {
          for (int64_t r = 0; r < kBlock; ++r) bb.rawm_bar[next][r] += lb[r];
          ++next;
        }
      }
    }
    output_layer_backward(m2, n_m, bb.rawm_bar, blk.sm, L.m2, L.m2b, bb, g);
    for (std::size_t k = 0; k < bb.z_bar.size(); ++k) bb.z_bar[k] += bb.sm_bar[k];
    first_layer_backward(m1, blk.sm, L.m1, L.m1b, g.m1b_rows, blk, bb, g);
  }

  // MState = m_state, a template argument so that the constant-mass backward compiles without the state mass's
  // branches (it measured ~5% slower with them).
  template <bool MState>
  HAMLET_KERNEL_INLINE void backward_block(const T* q_in, const T* p_in, const T* qd_bar_in, const T* pn_bar_in,
                                           const GradOut& g, const AccLayout& L, Block& blk, BackBlock& bb) const {
    const int64_t n = blk.n, first = blk.first, n_raw = n2 * (n2 + 1) / 2;
    for (int64_t i = 0; i < d; ++i) {
      for (int64_t r = 0; r < kBlock; ++r) {
        const bool in = r < n;
        const int64_t at = (first + r) * d + i;
        blk.q[i][r] = in ? q_in[at] : T(0);
        blk.p[i][r] = in ? p_in[at] : T(0);
        bb.qd_bar[i][r] = in && qd_bar_in != nullptr ? qd_bar_in[at] : T(0);
        bb.pn_bar[i][r] = in && pn_bar_in != nullptr ? pn_bar_in[at] : T(0);
      }
    }
    // The forward substep again (run_block with K = 1), keeping what the backward reads.
    dissipation(blk);
    std::copy(blk.s.begin(), blk.s.end(), bb.s_d.begin());
    forcing(blk);
    std::copy(blk.s.begin(), blk.s.end(), bb.s_g.begin());
    potential(blk.q, blk, /*grad=*/true);
    std::copy(blk.s.begin(), blk.s.end(), bb.s_v.begin());
    const int64_t n_m = d * (d + 1) / 2;
    if constexpr (MState) mass_at(blk);
    mass_times_p(blk);
    energy_gradient_q(blk);
    if constexpr (MState) {
      for (int64_t c = 0; c < n_m; ++c) std::copy(blk.dk_raw[c], blk.dk_raw[c] + kBlock, bb.k0[c]);
      for (int64_t i = 0; i < d; ++i) std::copy(blk.y[i], blk.y[i] + kBlock, bb.ym0[i]);
    }
    apply_dissipation(blk);
    for (int64_t i = 0; i < n2; ++i) {
      for (int64_t r = 0; r < kBlock; ++r) {
        bb.x0[i][r] = blk.x[i][r];
        bb.y0[i][r] = blk.dx[i][r];
      }
    }
    for (int64_t i = 0; i < d; ++i)
      for (int64_t r = 0; r < kBlock; ++r) bb.pn[i][r] = blk.p[i][r] + h * (-blk.a[i][r] - bb.y0[d + i][r] + blk.g[i][r]);
    if constexpr (MState) {
      // x' = [a'; b'] at (q, p'): the kinetic part of a' moves with p (the forward's second half of the substep).
      for (int64_t i = 0; i < d; ++i) {
        std::copy(blk.p[i], blk.p[i] + kBlock, bb.p0[i]);
        std::copy(bb.pn[i], bb.pn[i] + kBlock, blk.p[i]);
      }
      mass_times_p(blk);
      energy_gradient_q(blk);
      for (int64_t i = 0; i < d; ++i) {
        for (int64_t r = 0; r < kBlock; ++r) {
          bb.x1[i][r] = blk.a[i][r];
          bb.x1[d + i][r] = blk.b[i][r];
        }
        std::copy(blk.y[i], blk.y[i] + kBlock, bb.ym1[i]);
        std::copy(bb.p0[i], bb.p0[i] + kBlock, blk.p[i]);
      }
      for (int64_t c = 0; c < n_m; ++c) std::copy(blk.dk_raw[c], blk.dk_raw[c] + kBlock, bb.k1[c]);
    } else {
      for (int64_t i = 0; i < d; ++i) {
        for (int64_t r = 0; r < kBlock; ++r) bb.x1[i][r] = blk.a[i][r];
        for (int64_t r = 0; r < kBlock; ++r) bb.x1[d + i][r] = 0;
        for (int64_t k = 0; k < d; ++k) {
          const T m = minv[i * d + k];
          for (int64_t r = 0; r < kBlock; ++r) bb.x1[d + i][r] += m * bb.pn[k][r];
        }
      }
    }
    times_d(blk, bb.x1, bb.y1);

    // q̇ = b' − (D x')_q with x' = [a; b'], b' = M⁻¹ p'.
    for (int64_t k = 0; k < n2 * n2; ++k)
      for (int64_t r = 0; r < kBlock; ++r) bb.d_bar[k][r] = 0;
    for (int64_t i = 0; i < d; ++i) {
      for (int64_t k = 0; k < n2; ++k)
        for (int64_t r = 0; r < kBlock; ++r) bb.d_bar[i * n2 + k][r] = -bb.qd_bar[i][r] * bb.x1[k][r];
    }
    // x̄' = Dᵀ ȳ' with ȳ'_q = −q̇̄, ȳ'_p = 0: ā from its first half, b̄' = q̇̄ + its second half.
    for (int64_t k = 0; k < n2; ++k) {
      T* out = k < d ? bb.a_bar[k] : bb.b_bar[k - d];
      for (int64_t r = 0; r < kBlock; ++r) out[r] = k < d ? T(0) : bb.qd_bar[k - d][r];
      for (int64_t i = 0; i < d; ++i)
        for (int64_t r = 0; r < kBlock; ++r) out[r] -= blk.dm[i * n2 + k][r] * bb.qd_bar[i][r];
    }
    // b' = M⁻¹ p': p̄' += M⁻ᵀ b̄', M̄ += b̄' p'ᵀ; with a state mass also a' = ∂V/∂q + ∂K/∂q(q, p') for ā' (ā so far);
    // then p' = p + h(−a − (D x)_p + G).
    for (int64_t k = 0; k < d; ++k)
      for (int64_t r = 0; r < kBlock; ++r) bb.p_bar[k][r] = bb.pn_bar[k][r];
    if constexpr (MState) {
      for (int64_t k = 0; k < d * d; ++k)
        for (int64_t r = 0; r < kBlock; ++r) {
          bb.minv_bar[k][r] = 0;
          bb.lm_bar[k][r] = 0;
        }
      for (int64_t c = 0; c < n_m; ++c)
        for (int64_t r = 0; r < kBlock; ++r) bb.rawm_bar[c][r] = 0;
      std::fill(bb.sm_bar.begin(), bb.sm_bar.end(), T(0));
      state_mass_backward(bb.b_bar, bb.pn, bb.p_bar, blk, bb);
      kinetic_grad_backward(bb.pn, bb.k1, bb.ym1, bb.a_bar, bb.p_bar, blk, bb, g, L);
    } else {
      mass_backward(bb.b_bar, bb.pn, bb.p_bar, g.acc + L.minv * kBlock);
    }
    if constexpr (MState) {  // the kinetic gradient at p reads its ā alone
      for (int64_t i = 0; i < d; ++i)
        for (int64_t r = 0; r < kBlock; ++r) bb.a0_bar[i][r] = -h * bb.p_bar[i][r];
    }
    for (int64_t i = 0; i < d; ++i) {
      for (int64_t r = 0; r < kBlock; ++r) {
        bb.a_bar[i][r] -= h * bb.p_bar[i][r];
        bb.y_bar[i][r] = 0;
        bb.y_bar[d + i][r] = -h * bb.p_bar[i][r];
        bb.g_bar[i][r] = h * bb.p_bar[i][r];
      }
    }
    // y = D x with x = [a; b]: D̄ += ȳ xᵀ, x̄ = Dᵀ ȳ; b = M⁻¹ p.
    for (int64_t i = d; i < n2; ++i)
      for (int64_t k = 0; k < n2; ++k)
        for (int64_t r = 0; r < kBlock; ++r) bb.d_bar[i * n2 + k][r] += bb.y_bar[i][r] * bb.x0[k][r];
    for (int64_t k = 0; k < n2; ++k) {
      for (int64_t r = 0; r < kBlock; ++r) blk.tmp[r] = 0;
      for (int64_t i = d; i < n2; ++i)
        for (int64_t r = 0; r < kBlock; ++r) blk.tmp[r] += blk.dm[i * n2 + k][r] * bb.y_bar[i][r];
      if (k < d) {
        for (int64_t r = 0; r < kBlock; ++r) bb.a_bar[k][r] += blk.tmp[r];
        if constexpr (MState) {
          for (int64_t r = 0; r < kBlock; ++r) bb.a0_bar[k][r] += blk.tmp[r];
        }
      } else {
        for (int64_t r = 0; r < kBlock; ++r) bb.b_bar[k - d][r] = blk.tmp[r];
      }
    }
    if constexpr (MState) {
      state_mass_backward(bb.b_bar, blk.p, bb.p_bar, blk, bb);
      kinetic_grad_backward(blk.p, bb.k0, bb.ym0, bb.a0_bar, bb.p_bar, blk, bb, g, L);
    } else {
      mass_backward(bb.b_bar, blk.p, bb.p_bar, g.acc + L.minv * kBlock);
    }
    for (int64_t i = 0; i < d; ++i)
      for (int64_t r = 0; r < kBlock; ++r) bb.q_bar[i][r] = 0;

    // D = L Lᵀ + ε I: L̄ = (D̄ + D̄ᵀ) L on the lower triangle, then raw̄ in cholesky_from_raw's layout.
    int64_t next = n2;
    for (int64_t i = 0; i < n2; ++i) {
      for (int64_t j = 0; j <= i; ++j) {
        for (int64_t r = 0; r < kBlock; ++r) blk.tmp[r] = 0;
        for (int64_t k = j; k < n2; ++k)  // L[k][j] = 0 for k < j
          for (int64_t r = 0; r < kBlock; ++r)
            blk.tmp[r] += (bb.d_bar[i * n2 + k][r] + bb.d_bar[k * n2 + i][r]) * blk.l[k * n2 + j][r];
        T* out = bb.raw_bar[j == i ? i : next];
        if (j == i && d_softplus) {
          for (int64_t r = 0; r < kBlock; ++r) out[r] = blk.tmp[r] / (T(1) + exp_of(-blk.raw[i][r]));
        } else {
          for (int64_t r = 0; r < kBlock; ++r) out[r] = blk.tmp[r];
        }
        if (j < i) ++next;
      }
    }
    // raw = D2 s_D + b and G = G2 s_G + b, then their first layers.
    output_layer_backward(d2, n_raw, bb.raw_bar, bb.s_d, L.d2, L.d2b, bb, g);
    first_layer_backward(d1, bb.s_d, L.d1, L.d1b, g.d1b_rows, blk, bb, g);
    output_layer_backward(g2, d, bb.g_bar, bb.s_g, L.g2, L.g2b, bb, g);
    first_layer_backward(g1, bb.s_g, L.g1, L.g1b, g.g1b_rows, blk, bb, g);

    // a = V1ᵀ c with c = (1 − s_V²) ⊙ v2: V̄1 += c āᵀ, c̄ = V1 ā, v̄2 += c̄ (1 − s_V²), s̄_V = −2 s_V v2 c̄.
    for (int64_t j = 0; j < w; ++j) {
      T* z = bb.z_bar.data() + j * kBlock;
      const T* u = bb.s_v.data() + j * kBlock;
      const T vj = v2[j];
      for (int64_t r = 0; r < kBlock; ++r) {
        bb.c[r] = (T(1) - u[r] * u[r]) * vj;
        z[r] = 0;
      }
      for (int64_t i = 0; i < d; ++i) {
        const T wji = v1[j * d + i];
        T* acc = g.acc + (L.v1 + j * d + i) * kBlock;
        for (int64_t r = 0; r < kBlock; ++r) {
          acc[r] += bb.c[r] * bb.a_bar[i][r];
          z[r] += wji * bb.a_bar[i][r];  // c̄ for now
        }
      }
      T* acc_v2 = g.acc + (L.v2 + j) * kBlock;
      for (int64_t r = 0; r < kBlock; ++r) {
        acc_v2[r] += z[r] * (T(1) - u[r] * u[r]);
        z[r] = T(-2) * u[r] * vj * z[r];
      }
    }
    first_layer_backward(v1, bb.s_v, L.v1, L.v1b, g.v1b_rows, blk, bb, g);
    if constexpr (MState) mass_network_backward(blk, bb, g, L);

    for (int64_t r = 0; r < n; ++r) {
      for (int64_t i = 0; i < d; ++i) {
        g.p[(first + r) * d + i] = bb.p_bar[i][r];
        g.q[(first + r) * d + i] = bb.q_bar[i][r];
      }
    }
  }

  HAMLET_KERNEL_INLINE void run_backward(const T* q_in, const T* p_in, const T* qd_bar, const T* pn_bar,
                                         const GradOut& g) const {
    const AccLayout L = acc_layout();
    auto blk = std::make_unique<Block>();
    auto bb = std::make_unique<BackBlock>();
    const std::size_t units = static_cast<std::size_t>(w * kBlock);
    blk->s.assign(units, T(0));
    blk->sm.assign(units, T(0));
    bb->s_v.assign(units, T(0));
    bb->s_g.assign(units, T(0));
    bb->s_d.assign(units, T(0));
    bb->z_bar.assign(units, T(0));
    bb->sm_bar.assign(units, T(0));
    for (int64_t first = 0; first < rows; first += kBlock) {
      blk->first = first;
      blk->n = std::min(kBlock, rows - first);
      if (m_state) {
        backward_block<true>(q_in, p_in, qd_bar, pn_bar, g, L, *blk, *bb);
      } else {
        backward_block<false>(q_in, p_in, qd_bar, pn_bar, g, L, *blk, *bb);
      }
    }
  }
};

// The float32 loop compiled three times, for AVX-512, AVX2 and the x86-64 baseline (SSE2), the one for the running
// CPU picked at load time (GCC function multiversioning). Measured on the Xeon in isolation (one phnn d = 1 step on
// 15,910 coordinates, best of 20): 2.7 ms baseline, 1.5 ms AVX2, 1.0 ms AVX-512. The clones compute the same
// arithmetic in the same order (no loop reassociates across lanes, no -ffast-math), but GCC contracts a·b + c into
// one FMA where the ISA has it, so the AVX2 and AVX-512 clones may differ from the baseline in the last bit; one
// machine always runs the same clone.
__attribute__((target_clones("avx512f", "avx2", "default"))) void run_float(const Kernel<float>& k, const float* q,
                                                                    const float* p,
                                                                    const typename Kernel<float>::Out& out) {
  k.run(q, p, out);
}

__attribute__((target_clones("avx512f", "avx2", "default"))) void run_backward_float(
    const Kernel<float>& k, const float* q, const float* p, const float* q_dot_bar, const float* p_next_bar,
    const typename Kernel<float>::GradOut& out) {
  k.run_backward(q, p, q_dot_bar, p_next_bar, out);
}

__attribute__((target_clones("avx512f", "avx2", "default"))) Kernel<float>::Sums run_item_float(
    const Kernel<float>& k, const Kernel<float>::Item& item, const Kernel<float>::Readout& readout,
    Kernel<float>::Block& blk) {
  return k.run_item(item, readout, blk);
}

__attribute__((target_clones("avx512f", "avx2", "default"))) Kernel<float>::Sums run_features_item_float(
    const Kernel<float>& k, const Kernel<float>::Item& item, const Kernel<float>::Readout& readout,
    Kernel<float>::Block& blk, const lopt::Job<float>& x, const lopt::Layer0<float>& l0, int64_t offset,
    Kernel<float>::FeatureScratch& fs) {
  return k.run_features_item(item, readout, blk, x, l0, offset, fs);
}

// The four energy terms of an update summed per problem, added work item by work item in the caller's fixed order
// (so the sums do not depend on the thread count), then written into the result in the step's dtype.
struct ProblemEnergies {
  std::vector<double> e_before, e_after, dissipated, supplied;
  explicit ProblemEnergies(int64_t problems)
      : e_before(static_cast<std::size_t>(problems)), e_after(e_before), dissipated(e_before), supplied(e_before) {}
  template <typename Sums>
  void add(int64_t problem, const Sums& s) {
    const auto b = static_cast<std::size_t>(problem);
    e_before[b] += s.e_before;
    e_after[b] += s.e_after;
    dissipated[b] += s.dissipated;
    supplied[b] += s.supplied;
  }
  void write(UpdateResult& out, at::ScalarType dtype) const {
    const auto to_tensor = [&](const std::vector<double>& v) { return at::tensor(v, at::kDouble).to(dtype); };
    out.energy_before = to_tensor(e_before);
    out.energy_after = to_tensor(e_after);
    out.dissipated_power = to_tensor(dissipated);
    out.supplied_power = to_tensor(supplied);
  }
};

at::Tensor contiguous_as(const at::Tensor& t, at::ScalarType dtype) { return t.to(dtype).contiguous(); }

// The loop's view of the weights: pointers into contiguous tensors of the step's dtype, kept alive in `hold`.
template <typename T>
Kernel<T> make_kernel(const KernelWeights& kw, int64_t rows, int64_t d, at::ScalarType dtype, double h,
                      int64_t substeps, std::vector<at::Tensor>& hold) {
  const int64_t w = kw.v1.size(0);
  const bool d_state = kw.d1.defined();
  HAMLET_CHECK(kw.v1.dim() == 2 && kw.v1.size(1) == d && kw.v2.numel() == w && kw.v1_bias.numel() == w &&
                   kw.v2_bias.numel() == 1,
               "phnn kernel: V weights do not fit d = ", d, ", w = ", w);
  HAMLET_CHECK(kw.g1.dim() == 2 && kw.g1.size(0) == w && kw.g1.size(1) == d && kw.g2.dim() == 2 &&
                   kw.g2.size(0) == d && kw.g2.size(1) == w && kw.g2_bias.numel() == d,
               "phnn kernel: G weights do not fit d = ", d, ", w = ", w);
  const bool m_state = kw.m1.defined();
  const int64_t n_mass = d * (d + 1) / 2;
  if (m_state) {
    HAMLET_CHECK(kw.m1.dim() == 2 && kw.m1.size(0) == w && kw.m1.size(1) == d && kw.m1_bias.numel() == w &&
                     kw.m2.dim() == 2 && kw.m2.size(0) == n_mass && kw.m2.size(1) == w && kw.m2_bias.numel() == n_mass,
                 "phnn kernel: M weights do not fit d = ", d, ", w = ", w);
  } else {
    HAMLET_CHECK(kw.inv_mass.defined() && kw.inv_mass.dim() == 2 && kw.inv_mass.size(0) == d &&
                     kw.inv_mass.size(1) == d,
                 "phnn kernel: needs the M network or a constant M⁻¹ [", d, ", ", d, "]");
  }
  const int64_t n_raw = 2 * d * (2 * d + 1) / 2;
  if (d_state) {
    HAMLET_CHECK(kw.d1.dim() == 2 && kw.d1.size(0) == w && kw.d1.size(1) == d && kw.d2.dim() == 2 &&
                     kw.d2.size(0) == n_raw && kw.d2.size(1) == w && kw.d2_bias.numel() == n_raw,
                 "phnn kernel: D weights do not fit d = ", d, ", w = ", w);
  } else {
    HAMLET_CHECK(kw.dissipation.defined() && kw.dissipation.dim() == 2 && kw.dissipation.size(0) == 2 * d &&
                     kw.dissipation.size(1) == 2 * d,
                 "phnn kernel: needs the D network or a constant D [", 2 * d, ", ", 2 * d, "]");
  }
  const auto take = [&](const at::Tensor& t) -> const T* {
    hold.push_back(contiguous_as(t, dtype));
    return hold.back().data_ptr<T>();
  };
  // A first-layer bias [w] or [R, w]; the per-row one is transposed once so that blocks read it contiguously.
  const auto bias = [&](const at::Tensor& b, const char* name) -> Bias<T> {
    HAMLET_CHECK(b.dim() == 1 ? b.size(0) == w : (b.dim() == 2 && b.size(0) == rows && b.size(1) == w),
                 "phnn kernel: ", name, " must be [", w, "] or [", rows, ", ", w, "], got ", b.sizes());
    if (b.dim() == 1) return {take(b), 0};
    return {take(b.t()), rows};
  };
  Kernel<T> k{};
  k.rows = rows;
  k.d = d;
  k.w = w;
  k.n2 = 2 * d;
  k.v1 = take(kw.v1);
  k.v1b = bias(kw.v1_bias, "the V bias");
  k.v2 = take(kw.v2);
  k.v2b = static_cast<T>(kw.v2_bias.reshape({}).item<double>());
  k.g1 = take(kw.g1);
  k.g1b = bias(kw.g1_bias, "the G bias");
  k.g2 = take(kw.g2);
  k.g2b = take(kw.g2_bias);
  k.d_state = d_state;
  if (d_state) {
    k.d1 = take(kw.d1);
    k.d1b = bias(kw.d1_bias, "the D bias");
    k.d2 = take(kw.d2);
    k.d2b = take(kw.d2_bias);
  } else {
    k.dconst = take(kw.dissipation);
  }
  k.m_state = m_state;
  if (m_state) {
    k.m1 = take(kw.m1);
    k.m1b = bias(kw.m1_bias, "the M bias");
    k.m2 = take(kw.m2);
    k.m2b = take(kw.m2_bias);
  } else {
    k.minv = take(kw.inv_mass);
  }
  k.eps_m = static_cast<T>(kw.eps_m);
  k.d_softplus = kw.d_softplus;
  k.eps_d = static_cast<T>(kw.eps_d);
  k.h = static_cast<T>(h);
  k.substeps = substeps;
  return k;
}

template <typename T>
KernelStep run_kernel(const KernelWeights& kw, const at::Tensor& q, const at::Tensor& p, double h, int64_t substeps) {
  const auto dtype = q.scalar_type();
  const int64_t rows = q.size(0), d = q.size(1);
  std::vector<at::Tensor> hold;  // every tensor the loop reads, alive until it has run
  const Kernel<T> k = make_kernel<T>(kw, rows, d, dtype, h, substeps, hold);

  const at::Tensor qc = q.contiguous(), pc = p.to(dtype).contiguous();
  KernelStep out;
  out.q_dot = at::empty({rows, d}, qc.options());
  out.p_next = at::empty({rows, d}, qc.options());
  out.q_hat = at::empty({rows, d}, qc.options());
  out.energy_before = at::empty({rows}, qc.options());
  out.energy_after = at::empty({rows}, qc.options());
  out.dissipated_power = at::empty({rows}, qc.options());
  out.supplied_power = at::empty({rows}, qc.options());
  const typename Kernel<T>::Out o{out.q_dot.data_ptr<T>(), out.p_next.data_ptr<T>(), out.q_hat.data_ptr<T>(), out.energy_before.data_ptr<T>(),
         out.energy_after.data_ptr<T>(), out.dissipated_power.data_ptr<T>(), out.supplied_power.data_ptr<T>()};
  if constexpr (std::is_same_v<T, float>) {
    run_float(k, qc.data_ptr<T>(), pc.data_ptr<T>(), o);
  } else {
    k.run(qc.data_ptr<T>(), pc.data_ptr<T>(), o);
  }
  return out;
}

// The readout as the kernel reads it, for feature width d.
template <typename T>
typename Kernel<T>::Readout make_readout(const UpdateReadout& readout, int64_t d) {
  const int64_t outputs = readout.exp ? 2 : 1;
  HAMLET_CHECK(readout.w_u.dim() == 2 && readout.w_u.size(0) == outputs && readout.w_u.size(1) == 2 * d,
               "phnn kernel: W_u must be [", outputs, ", ", 2 * d, "], got ", readout.w_u.sizes());
  typename Kernel<T>::Readout ro{};
  const at::Tensor wu = readout.w_u.to(at::kDouble).contiguous();
  for (int64_t o = 0; o < outputs; ++o)
    for (int64_t i = 0; i < 2 * d; ++i) ro.wu[o][i] = static_cast<T>(wu.data_ptr<double>()[o * 2 * d + i]);
  ro.exp = readout.exp;
  ro.exp_mult = static_cast<T>(readout.exp_mult);
  ro.out_mul = static_cast<T>(readout.out_mul);  // ATen rounds a scalar operand to the tensor's dtype
  ro.preprocess = readout.preprocess;
  return ro;
}

template <typename T>
UpdateResult run_update(const KernelWeights& kw, const UpdateReadout& readout, const TensorList& params,
                        const TensorList& grads, const TensorList& momenta, double h, int64_t substeps) {
  const auto dtype = params[0].scalar_type();
  const int64_t d = readout.preprocess ? 2 : 1;
  std::vector<at::Tensor> hold;
  const Kernel<T> k = make_kernel<T>(kw, /*rows=*/0, d, dtype, h, substeps, hold);
  const typename Kernel<T>::Readout ro = make_readout<T>(readout, d);

  const std::size_t n_tensors = params.size();
  std::vector<at::Tensor> theta(n_tensors), g(n_tensors), p(n_tensors);
  UpdateResult out;
  for (std::size_t i = 0; i < n_tensors; ++i) {
    std::vector<int64_t> state_shape(params[i].sizes().begin(), params[i].sizes().end());
    state_shape.push_back(d);
    HAMLET_CHECK(params[i].dim() >= 1 && grads[i].sizes() == params[i].sizes() &&
                     momenta[i].sizes() == at::IntArrayRef(state_shape) && params[i].size(0) == params[0].size(0),
                 "phnn kernel: gradient [B, ...] and momentum [B, ..., ", d, "] must fit the parameter ",
                 params[i].sizes(), ", got ", grads[i].sizes(), " and ", momenta[i].sizes());
    theta[i] = params[i].contiguous();
    g[i] = grads[i].to(dtype).contiguous();
    p[i] = momenta[i].to(dtype).contiguous();
    out.params.push_back(at::empty_like(theta[i], at::MemoryFormat::Contiguous));
    out.p.push_back(at::empty_like(p[i], at::MemoryFormat::Contiguous));
  }
  const std::vector<chunks::Item> items = chunks::items(theta);
  std::vector<typename Kernel<T>::Sums> sums(items.size());
  for_each_chunk(static_cast<int64_t>(items.size()), 1, [&](int64_t c, int64_t, int64_t) {
    const chunks::Item& it = items[static_cast<std::size_t>(c)];
    const std::size_t i = static_cast<std::size_t>(it.tensor);
    const typename Kernel<T>::Item item{g[i].data_ptr<T>() + it.begin, p[i].data_ptr<T>() + it.begin * d,
                                        theta[i].data_ptr<T>() + it.begin, out.params[i].data_ptr<T>() + it.begin,
                                        out.p[i].data_ptr<T>() + it.begin * d, it.end - it.begin};
    const auto blk = k.new_block();
    if constexpr (std::is_same_v<T, float>) {
      sums[static_cast<std::size_t>(c)] = run_item_float(k, item, ro, *blk);
    } else {
      sums[static_cast<std::size_t>(c)] = k.run_item(item, ro, *blk);
    }
  });
  // Per problem, the items' sums in item order (tensor by tensor, as per_problem_row_sum adds the tensors).
  ProblemEnergies energies(params[0].size(0));
  for (std::size_t c = 0; c < items.size(); ++c) energies.add(items[c].problem, sums[c]);
  energies.write(out, dtype);
  return out;
}

// Coordinates per chunk of phnn-features' last pass, at most: its ~2,400 flops per coordinate make chunks of a few
// thousand coordinates long enough to amortise their scheduling, and 15.9k coordinates still split over 8.
constexpr int64_t kFeatureChunk = 4096;

template <typename T>
UpdateResult run_features_update(const KernelWeights& kw, const FeatureInputs& features, const UpdateReadout& readout,
                                 const TensorList& params, const TensorList& grads, const TensorList& momenta,
                                 const optim::OptimizerState& state, double h, int64_t substeps) {
  const auto dtype = params[0].scalar_type();
  const auto opts = params[0].options();
  std::vector<at::Tensor> hold;
  const Kernel<T> k = make_kernel<T>(kw, /*rows=*/0, /*d=*/1, dtype, h, substeps, hold);
  const typename Kernel<T>::Readout ro = make_readout<T>(readout, 1);
  const int64_t width = (k.d_state ? 2 : 1) * k.w;
  HAMLET_CHECK(features.weight.dim() == 2 && features.weight.size(0) == width &&
                   features.weight.size(1) == kMlpLoptFeatures && features.bias.numel() == width,
               "phnn kernel: the context layer must be [", width, ", ", kMlpLoptFeatures, "] with a bias [", width,
               "], got ", features.weight.sizes(), " and ", features.bias.sizes());
  const at::Tensor w0_t = features.weight.t().to(dtype).contiguous(), b0_t = features.bias.to(dtype).contiguous();
  const std::vector<T> w0(w0_t.data_ptr<T>(), w0_t.data_ptr<T>() + w0_t.numel()),
      b0(b0_t.data_ptr<T>(), b0_t.data_ptr<T>() + b0_t.numel());
  const lopt::Decays<T> decays = lopt::decays_of<T>(features.decays);

  const std::size_t n_tensors = params.size();
  std::vector<at::Tensor> p(n_tensors);
  UpdateResult out;
  for (std::size_t i = 0; i < n_tensors; ++i) {
    HAMLET_CHECK(momenta[i].numel() == params[i].numel(), "phnn kernel: the momentum of a parameter of shape ",
                 params[i].sizes(), " must have as many entries (d = 1), got ", momenta[i].sizes());
    p[i] = momenta[i].to(dtype).contiguous();
    out.p.push_back(at::empty_like(p[i], at::MemoryFormat::Contiguous));
  }
  ProblemEnergies energies(params[0].size(0));
  optim::OptimizerState next;
  lopt::for_each_job<T>(params, grads, state, opts, out.params, next,
                        [&](std::size_t i, int64_t b, const lopt::Job<T>& x) {
    const lopt::Layer0<T> l0 = lopt::prepare_layer0(decays, x, w0, b0, width);
    const T* mom = p[i].data_ptr<T>() + b * x.n;
    T* mom_out = out.p[i].data_ptr<T>() + b * x.n;
    const int64_t chunk = lopt::chunk_size(x.n, kFeatureChunk);
    std::vector<typename Kernel<T>::Sums> sums(static_cast<std::size_t>(chunk_count(x.n, chunk)));
    for_each_chunk(x.n, chunk, [&](int64_t c, int64_t begin, int64_t end) {
      const auto blk = k.new_block();
      const auto fs = std::make_unique<typename Kernel<T>::FeatureScratch>();
      fs->ctx.assign(static_cast<std::size_t>(width * kBlock), T(0));
      // This chunk's kernel reads the G and D biases of each row from the block's context layer.
      Kernel<T> kc = k;
      kc.g1b = {fs->ctx.data(), kBlock};
      if (kc.d_state) kc.d1b = {fs->ctx.data() + k.w * kBlock, kBlock};
      const typename Kernel<T>::Item item{x.g + begin, mom + begin, x.p + begin, x.p_next + begin, mom_out + begin,
                                          end - begin};
      if constexpr (std::is_same_v<T, float>) {
        sums[static_cast<std::size_t>(c)] = run_features_item_float(kc, item, ro, *blk, x, l0, begin, *fs);
      } else {
        sums[static_cast<std::size_t>(c)] = kc.run_features_item(item, ro, *blk, x, l0, begin, *fs);
      }
    });
    // Per problem, tensor after tensor and chunk after chunk, as the whole update's items.
    for (const auto& sum : sums) energies.add(b, sum);
  });
  out.m = std::move(next.slots["m"]);
  out.v = std::move(next.slots["v"]);
  out.fac = std::move(next.slots["fac"]);
  energies.write(out, dtype);
  return out;
}

// The cotangents of every input of fused_step_trainable, in StepNode's input order.
template <typename T>
std::vector<at::Tensor> run_backward_kernel(const KernelWeights& kw, const at::Tensor& q, const at::Tensor& p,
                                            const at::Tensor& q_dot_bar, const at::Tensor& p_next_bar, double h) {
  const auto dtype = q.scalar_type();
  const int64_t rows = q.size(0), d = q.size(1), w = kw.v1.size(0);
  std::vector<at::Tensor> hold;
  const Kernel<T> k = make_kernel<T>(kw, rows, d, dtype, h, 1, hold);
  const typename Kernel<T>::AccLayout layout = k.acc_layout();
  const auto opts = q.options();
  at::Tensor acc = at::zeros({layout.total, kBlock}, opts);
  const at::Tensor qc = q.contiguous(), pc = p.contiguous();
  const at::Tensor qd = q_dot_bar.defined() ? q_dot_bar.contiguous() : at::Tensor();
  const at::Tensor pn = p_next_bar.defined() ? p_next_bar.contiguous() : at::Tensor();
  at::Tensor q_bar = at::empty({rows, d}, opts), p_bar = at::empty({rows, d}, opts);
  const auto rows_grad = [&](const at::Tensor& bias) { return bias.dim() == 2 ? at::empty({rows, w}, opts) : at::Tensor(); };
  at::Tensor v1b_rows = rows_grad(kw.v1_bias), g1b_rows = rows_grad(kw.g1_bias), d1b_rows = rows_grad(kw.d1_bias);
  at::Tensor m1b_rows = k.m_state ? rows_grad(kw.m1_bias) : at::Tensor();
  const auto ptr = [](at::Tensor& t) -> T* { return t.defined() ? t.data_ptr<T>() : nullptr; };
  const typename Kernel<T>::GradOut out{q_bar.data_ptr<T>(), p_bar.data_ptr<T>(), acc.data_ptr<T>(), ptr(v1b_rows),
                                        ptr(g1b_rows), ptr(d1b_rows), ptr(m1b_rows)};
  const T* qd_ptr = qd.defined() ? qd.data_ptr<T>() : nullptr;
  const T* pn_ptr = pn.defined() ? pn.data_ptr<T>() : nullptr;
  if constexpr (std::is_same_v<T, float>) {
    run_backward_float(k, qc.data_ptr<T>(), pc.data_ptr<T>(), qd_ptr, pn_ptr, out);
  } else {
    k.run_backward(qc.data_ptr<T>(), pc.data_ptr<T>(), qd_ptr, pn_ptr, out);
  }
  const at::Tensor sums = acc.sum(1);
  const auto part = [&](int64_t offset, const at::Tensor& like) {
    return sums.narrow(0, offset, like.numel()).reshape(like.sizes()).to(like.scalar_type());
  };
  const auto bias = [&](int64_t offset, const at::Tensor& like, const at::Tensor& per_row) {
    return per_row.defined() ? per_row.to(like.scalar_type()) : part(offset, like);
  };
  std::vector<at::Tensor> result = {q_bar,
                                    p_bar,
                                    part(layout.v1, kw.v1),
                                    bias(layout.v1b, kw.v1_bias, v1b_rows),
                                    part(layout.v2, kw.v2),
                                    part(layout.g1, kw.g1),
                                    bias(layout.g1b, kw.g1_bias, g1b_rows),
                                    part(layout.g2, kw.g2),
                                    part(layout.g2b, kw.g2_bias),
                                    part(layout.d1, kw.d1),
                                    bias(layout.d1b, kw.d1_bias, d1b_rows),
                                    part(layout.d2, kw.d2),
                                    part(layout.d2b, kw.d2_bias)};
  if (k.m_state) {
    result.push_back(part(layout.m1, kw.m1));
    result.push_back(bias(layout.m1b, kw.m1_bias, m1b_rows));
    result.push_back(part(layout.m2, kw.m2));
    result.push_back(part(layout.m2b, kw.m2_bias));
  } else {
    result.push_back(part(layout.minv, kw.inv_mass));
  }
  return result;
}

// Inputs of StepNode after q and p, in order: the mass is inv_mass (constant) or m1, m1_bias, m2, m2_bias (state);
// v2_bias last (it only enters the logged energies).
std::vector<at::Tensor> node_weights(const KernelWeights& kw) {
  std::vector<at::Tensor> t = {kw.v1, kw.v1_bias, kw.v2, kw.g1, kw.g1_bias, kw.g2, kw.g2_bias, kw.d1, kw.d1_bias,
                               kw.d2, kw.d2_bias};
  if (kw.m1.defined()) {
    t.insert(t.end(), {kw.m1, kw.m1_bias, kw.m2, kw.m2_bias});
  } else {
    t.push_back(kw.inv_mass);
  }
  t.push_back(kw.v2_bias);
  return t;
}

KernelWeights weights_from(const at::TensorList& t, bool d_softplus, double eps_d, double eps_m) {
  KernelWeights kw;
  kw.v1 = t[2];
  kw.v1_bias = t[3];
  kw.v2 = t[4];
  kw.g1 = t[5];
  kw.g1_bias = t[6];
  kw.g2 = t[7];
  kw.g2_bias = t[8];
  kw.d1 = t[9];
  kw.d1_bias = t[10];
  kw.d2 = t[11];
  kw.d2_bias = t[12];
  // q, p, 11 tensors, then one for the constant mass or four for the M network, then v2_bias.
  if (t.size() == 18) {
    kw.m1 = t[13];
    kw.m1_bias = t[14];
    kw.m2 = t[15];
    kw.m2_bias = t[16];
  } else {
    kw.inv_mass = t[13];
  }
  kw.v2_bias = t[t.size() - 1];
  kw.d_softplus = d_softplus;
  kw.eps_d = eps_d;
  kw.eps_m = eps_m;
  return kw;
}

// One substep as a graph node: inputs q, p, then node_weights; outputs q̇ and p' (differentiable), q̂ and the four
// energy terms (not).
struct StepNode : torch::autograd::Function<StepNode> {
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx, at::TensorList tensors,
                                                double h, bool d_softplus, double eps_d, double eps_m) {
    const KernelWeights kw = weights_from(tensors, d_softplus, eps_d, eps_m);
    const at::Tensor &q = tensors[0], &p = tensors[1];
    const KernelStep k = q.scalar_type() == at::kDouble ? run_kernel<double>(kw, q, p, h, 1)
                                                        : run_kernel<float>(kw, q, p, h, 1);
    ctx->save_for_backward(tensors.vec());
    ctx->saved_data["h"] = h;
    ctx->saved_data["d_softplus"] = d_softplus;
    ctx->saved_data["eps_d"] = eps_d;
    ctx->saved_data["eps_m"] = eps_m;
    ctx->set_materialize_grads(false);
    ctx->mark_non_differentiable({k.q_hat, k.energy_before, k.energy_after, k.dissipated_power, k.supplied_power});
    return {k.q_dot, k.p_next, k.q_hat, k.energy_before, k.energy_after, k.dissipated_power, k.supplied_power};
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const torch::autograd::variable_list saved = ctx->get_saved_variables();
    torch::autograd::variable_list result(saved.size() + 4);  // + h, d_softplus, eps_d, eps_m
    if (!grads[0].defined() && !grads[1].defined()) return result;
    const double h = ctx->saved_data["h"].toDouble();
    const KernelWeights kw = weights_from(saved, ctx->saved_data["d_softplus"].toBool(),
                                          ctx->saved_data["eps_d"].toDouble(), ctx->saved_data["eps_m"].toDouble());
    const at::Tensor &q = saved[0], &p = saved[1];
    const std::vector<at::Tensor> g = q.scalar_type() == at::kDouble
                                          ? run_backward_kernel<double>(kw, q, p, grads[0], grads[1], h)
                                          : run_backward_kernel<float>(kw, q, p, grads[0], grads[1], h);
    for (std::size_t i = 0; i < g.size(); ++i) result[i] = g[i];  // v2_bias (last input) keeps no gradient
    return result;
  }
};

}  // namespace

KernelStep fused_step(const KernelWeights& weights, const at::Tensor& q, const at::Tensor& p, double h,
                      int64_t substeps) {
  HAMLET_CHECK(q.dim() == 2 && q.size(1) >= 1 && q.size(1) <= kMaxDim && p.sizes() == q.sizes(),
               "phnn kernel: q and p must be [R, d] with d ≤ ", kMaxDim, ", got ", q.sizes(), " and ", p.sizes());
  HAMLET_CHECK(q.device().is_cpu() && p.device().is_cpu(), "phnn kernel: runs on the CPU only");
  HAMLET_CHECK(substeps >= 1, "phnn kernel: needs at least one substep, got ", substeps);
  if (q.scalar_type() == at::kDouble) return run_kernel<double>(weights, q, p, h, substeps);
  HAMLET_CHECK(q.scalar_type() == at::kFloat, "phnn kernel: float32 or float64 rows, got ", q.scalar_type());
  return run_kernel<float>(weights, q, p, h, substeps);
}

UpdateResult fused_update(const KernelWeights& weights, const UpdateReadout& readout, const TensorList& params,
                          const TensorList& grads, const TensorList& momenta, double h, int64_t substeps) {
  HAMLET_CHECK(!params.empty() && grads.size() == params.size() && momenta.size() == params.size(),
               "phnn kernel: one gradient and one momentum tensor per parameter tensor");
  HAMLET_CHECK(substeps >= 1, "phnn kernel: needs at least one substep, got ", substeps);
  const auto dtype = params[0].scalar_type();
  HAMLET_CHECK(dtype == at::kFloat || dtype == at::kDouble, "phnn kernel: float32 or float64, got ", dtype);
  for (std::size_t i = 0; i < params.size(); ++i) {
    HAMLET_CHECK(params[i].scalar_type() == dtype && params[i].device().is_cpu() && grads[i].device().is_cpu() &&
                     momenta[i].device().is_cpu(),
                 "phnn kernel: CPU tensors of one dtype");
  }
  HAMLET_CHECK(weights.v1_bias.dim() == 1 && weights.g1_bias.dim() == 1 &&
                   (!weights.d1_bias.defined() || weights.d1_bias.dim() == 1),
               "phnn kernel: the whole update takes shared first-layer biases (no per-row context)");
  if (dtype == at::kDouble) return run_update<double>(weights, readout, params, grads, momenta, h, substeps);
  return run_update<float>(weights, readout, params, grads, momenta, h, substeps);
}

UpdateResult fused_features_update(const KernelWeights& weights, const FeatureInputs& features,
                                   const UpdateReadout& readout, const TensorList& params, const TensorList& grads,
                                   const TensorList& momenta, const optim::OptimizerState& state, double h,
                                   int64_t substeps) {
  HAMLET_CHECK(!params.empty() && grads.size() == params.size() && momenta.size() == params.size(),
               "phnn kernel: one gradient and one momentum tensor per parameter tensor");
  HAMLET_CHECK(substeps >= 1, "phnn kernel: needs at least one substep, got ", substeps);
  HAMLET_CHECK(!readout.preprocess && weights.v1.dim() == 2 && weights.v1.size(1) == 1,
               "phnn kernel: lopt-features has d = 1 (q is the normalised gradient, no preprocessing)");
  for (const char* slot : {"m", "v", "fac"}) {
    const auto it = state.slots.find(slot);
    HAMLET_CHECK(it != state.slots.end() && it->second.size() == params.size(), "phnn kernel: state has no slot '",
                 slot, "' for every parameter tensor");
  }
  const auto dtype = params[0].scalar_type();
  HAMLET_CHECK(mlp_lopt_update_fused_applies(params, grads, {}, features.decays, state, params[0].options()),
               "phnn kernel: lopt-features' fused update needs CPU float32/float64 parameters of one dtype, "
               "per-problem rank <= 2 and no autograd");
  for (std::size_t i = 0; i < params.size(); ++i) {
    HAMLET_CHECK(momenta[i].device().is_cpu() && params[i].size(0) == params[0].size(0),
                 "phnn kernel: CPU momenta and parameters [B, ...] of one B");
  }
  if (dtype == at::kDouble) {
    return run_features_update<double>(weights, features, readout, params, grads, momenta, state, h, substeps);
  }
  return run_features_update<float>(weights, features, readout, params, grads, momenta, state, h, substeps);
}

bool trainable_step_applies(const KernelWeights& weights, int64_t substeps) {
  return substeps == 1 && weights.inv_mass.defined() != weights.m1.defined() && weights.d1.defined() &&
         !weights.dissipation.defined();
}

KernelStep fused_step_trainable(const KernelWeights& weights, const at::Tensor& q, const at::Tensor& p, double h,
                                int64_t substeps) {
  HAMLET_CHECK(trainable_step_applies(weights, substeps),
               "phnn kernel: the differentiable step needs K = 1 and a state dissipation");
  HAMLET_CHECK(q.dim() == 2 && q.size(1) >= 1 && q.size(1) <= kMaxDim && p.sizes() == q.sizes(),
               "phnn kernel: q and p must be [R, d] with d ≤ ", kMaxDim, ", got ", q.sizes(), " and ", p.sizes());
  HAMLET_CHECK(q.device().is_cpu() && p.device().is_cpu(), "phnn kernel: runs on the CPU only");
  const auto dtype = q.scalar_type();
  HAMLET_CHECK(dtype == at::kFloat || dtype == at::kDouble, "phnn kernel: float32 or float64 rows, got ", dtype);
  std::vector<at::Tensor> tensors = {q.contiguous(), p.to(dtype).contiguous()};
  for (const auto& t : node_weights(weights)) tensors.push_back(t.to(dtype).contiguous());
  const torch::autograd::variable_list out =
      StepNode::apply(at::TensorList(tensors), h, weights.d_softplus, weights.eps_d, weights.eps_m);
  KernelStep k;
  k.q_dot = out[0];
  k.p_next = out[1];
  k.q_hat = out[2];
  k.energy_before = out[3];
  k.energy_after = out[4];
  k.dissipated_power = out[5];
  k.supplied_power = out[6];
  return k;
}

}  // namespace hamlet::learned::ph
