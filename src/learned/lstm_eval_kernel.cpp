// The LSTM optimizer's evaluation step in blocks of rows (lstm_kernel.hpp, "Evaluation").
//
// Why blocks: lstm_fused_step runs each layer's cell GEMM over all R rows at once, so at model scale (R = 795k on
// the 784-1000-10 MLP) every [R, 4H] gate tensor is 254 MB and every pass over it goes to memory; the update around
// it adds full-size copies (to_rows of the states, the features, from_rows). Here a row's gates never leave
// registers or L1, and the only memory traffic is what the step must read (θ, g, four states) and write (θ', four
// new states).
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "hamlet/core/error.hpp"
#include "hamlet/core/parallel.hpp"
#include "hamlet/learned/lstm_kernel.hpp"
#include "hamlet/learned/preprocess.hpp"
#include "kernel_math.hpp"

namespace hamlet::learned {
namespace {

const char* const kSlotNames[4] = {"h1", "c1", "h2", "c2"};

// The weights rearranged for row-wise loops: each layer's [W_ih | W_hh] transposed to [in + H, 4H] (a row of it is
// what one input feature adds to the 4H gates), the two biases summed (as the tensor path's addmm(b_ih + b_hh, ..)).
template <typename T>
struct EvalWeights {
  int64_t d = 0, n = 0;      // features, hidden units
  std::vector<T> w1t, b1;    // [(d + H) · 4H], [4H]
  std::vector<T> w2t, b2;    // [2H · 4H], [4H]
  std::vector<T> head_w;     // [H]
  T head_b = 0;
  std::vector<T> scale;      // [4H]: 1 for the σ gates, 2 for g (tanh(a) = 2σ(2a) − 1)
  T out_mul = 1;
  bool preprocess = false;
  T threshold = 0, log_eps = 0, p = 0, exp_p = 0;  // P's constants in T, as the tensor path rounds them
};

template <typename T>
std::vector<T> values_of(const at::Tensor& t) {
  const at::Tensor c = t.contiguous();
  return {c.data_ptr<T>(), c.data_ptr<T>() + c.numel()};
}

template <typename T>
EvalWeights<T> make_weights(const LstmOptions& o, const TensorList& weights, const at::TensorOptions& opts) {
  TensorList w;
  for (const auto& x : weights) w.push_back(x.detach().to(opts));
  EvalWeights<T> k;
  k.d = o.dim();
  k.n = o.hidden;
  const int64_t d = k.d, n = k.n;
  HAMLET_CHECK(w.size() == 10 && w[0].sizes() == at::IntArrayRef({4 * n, d}) &&
                   w[1].sizes() == at::IntArrayRef({4 * n, n}) && w[4].sizes() == at::IntArrayRef({4 * n, n}) &&
                   w[5].sizes() == at::IntArrayRef({4 * n, n}) && w[8].numel() == n && w[9].numel() == 1,
               "lstm blocked kernel: the weights do not fit d = ", d, ", hidden = ", n);
  k.w1t = values_of<T>(at::cat({w[0], w[1]}, 1).t());
  k.b1 = values_of<T>(w[2] + w[3]);
  k.w2t = values_of<T>(at::cat({w[4], w[5]}, 1).t());
  k.b2 = values_of<T>(w[6] + w[7]);
  k.head_w = values_of<T>(w[8]);
  k.head_b = values_of<T>(w[9])[0];
  k.scale.assign(static_cast<std::size_t>(4 * n), T(1));
  for (int64_t j = 2 * n; j < 3 * n; ++j) k.scale[static_cast<std::size_t>(j)] = T(2);
  k.out_mul = static_cast<T>(o.out_mul);
  k.preprocess = o.preprocess;
  k.threshold = static_cast<T>(std::exp(-kPreprocessP));
  k.log_eps = static_cast<T>(1e-8);
  k.p = static_cast<T>(kPreprocessP);
  k.exp_p = static_cast<T>(std::exp(kPreprocessP));
  return k;
}

// Pointers of one block: `rows` coordinates of one parameter tensor, states [rows, H].
template <typename T>
struct Block {
  int64_t rows = 0;
  const T *theta, *g, *h1, *c1, *h2, *c2;
  T *theta_next, *h1n, *c1n, *h2n, *c2n;
};

// P(g) of preprocess.hpp (or g): the same operations in T as the tensor expressions.
template <typename T>
HAMLET_KERNEL_INLINE inline void features(const EvalWeights<T>& k, T g, T* x) {
  if (!k.preprocess) {
    x[0] = g;
    return;
  }
  const T magnitude = std::abs(g);
  if (magnitude >= k.threshold) {
    x[0] = std::log(magnitude + k.log_eps) / k.p;
    x[1] = static_cast<T>((T(0) < g) - (g < T(0)));
  } else {
    x[0] = T(-1);
    x[1] = g * k.exp_p;
  }
}

// ---- Plain loops: any dtype, any H (float32 without AVX-512, float64, 4H not a multiple of 16) ----

// One cell's gates a [4H] from its bias and the inputs in1 [k1] and in2 [k2] (rows of wt [k1 + k2, 4H]), activated.
template <typename T>
HAMLET_KERNEL_INLINE inline void gates_row(int64_t n4, const T* __restrict__ bias, const T* __restrict__ wt,
                                           const T* in1, int64_t k1, const T* in2, int64_t k2,
                                           const T* __restrict__ scale, T* __restrict__ a) {
  for (int64_t j = 0; j < n4; ++j) a[j] = bias[j];
  for (int64_t k = 0; k < k1; ++k) {
    const T v = in1[k];
    const T* __restrict__ w = wt + k * n4;
    for (int64_t j = 0; j < n4; ++j) a[j] += v * w[j];
  }
  for (int64_t k = 0; k < k2; ++k) {
    const T v = in2[k];
    const T* __restrict__ w = wt + (k1 + k) * n4;
    for (int64_t j = 0; j < n4; ++j) a[j] += v * w[j];
  }
  for (int64_t j = 0; j < n4; ++j) {
    const T s = scale[j];
    a[j] = s / (T(1) + kernel::exp_of(-s * a[j])) - (s - T(1));
  }
}

// c' = f ⊙ c + i ⊙ g, h' = o ⊙ tanh(c') from the activations a [4H] (order i f g o).
template <typename T>
HAMLET_KERNEL_INLINE inline void cell_row(int64_t n, const T* __restrict__ a, const T* __restrict__ cp,
                                          T* __restrict__ cn, T* __restrict__ hn) {
  const T* __restrict__ gi = a;
  const T* __restrict__ gf = a + n;
  const T* __restrict__ gg = a + 2 * n;
  const T* __restrict__ go = a + 3 * n;
  for (int64_t j = 0; j < n; ++j) {
    const T c = gf[j] * cp[j] + gi[j] * gg[j];
    cn[j] = c;
    hn[j] = go[j] * kernel::tanh_of(c);
  }
}

template <typename T>
HAMLET_KERNEL_INLINE inline void run_block_plain(const EvalWeights<T>& k, const Block<T>& b, T* a) {
  const int64_t n = k.n, d = k.d, n4 = 4 * n;
  T x[2];
  for (int64_t r = 0; r < b.rows; ++r) {
    features(k, b.g[r], x);
    gates_row(n4, k.b1.data(), k.w1t.data(), x, d, b.h1 + r * n, n, k.scale.data(), a);
    cell_row(n, a, b.c1 + r * n, b.c1n + r * n, b.h1n + r * n);
    gates_row(n4, k.b2.data(), k.w2t.data(), b.h1n + r * n, n, b.h2 + r * n, n, k.scale.data(), a);
    T* __restrict__ h2n = b.h2n + r * n;
    cell_row(n, a, b.c2 + r * n, b.c2n + r * n, h2n);
    T u = k.head_b;
    for (int64_t j = 0; j < n; ++j) u += k.head_w[j] * h2n[j];
    b.theta_next[r] = b.theta[r] + u * k.out_mul;
  }
}

__attribute__((target_clones("avx512f", "avx2", "default"))) void run_block_plain_float(
    const EvalWeights<float>& k, const Block<float>& b, float* a) {
  run_block_plain(k, b, a);
}
void run_block_plain_double(const EvalWeights<double>& k, const Block<double>& b, double* a) {
  run_block_plain(k, b, a);
}

// ---- AVX-512, float32, 4H = 16 · NV ----
//
// A tile of RT rows: each row's 4H gates are NV vectors, accumulated over the K inputs of a layer as RT · NV
// independent FMA chains (RT = 4, NV = 5 for H = 20: 20 accumulators, 5 weight vectors and a broadcast, within the
// 32 registers), so each weight vector loaded from L1 serves four rows. The activations are applied in registers;
// the cell update then reads the gates back from a small stack buffer at offsets H, 2H, 3H (not vector-aligned for
// H = 20) with masked loads for the last H mod 16 units.

// Everything up to the matching pop is compiled for AVX-512 (GCC's target pragma; clang's attribute pragma, which
// clang-14 of the sanitized build needs) and only called where block512_for found the CPU to have it.
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,fma"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f,fma")
// GCC 12's avx512fintrin.h gives its "undefined" pass-through vectors (max, min, conversions, shifts) the value of
// themselves, which -W(maybe-)uninitialized reports at every inlined call.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

// kernel::exp_vectorisable with AVX-512 intrinsics: the same clamp to [−87, 88], Cody–Waite split of ln 2 and
// polynomial; n by roundscale and 2ⁿ by scalef (one instruction each instead of the magic-number rounding and the
// exponent bits). NaN passes (max/min return their second operand on NaN).
HAMLET_KERNEL_INLINE inline __m512 exp512(__m512 x) {
  __m512 c = _mm512_max_ps(_mm512_set1_ps(-87.0f), x);
  c = _mm512_min_ps(_mm512_set1_ps(88.0f), c);
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(c, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), c);
  r = _mm512_fmadd_ps(n, _mm512_set1_ps(2.12194440e-4f), r);
  __m512 poly = _mm512_set1_ps(1.9875691500e-4f);
  poly = _mm512_fmadd_ps(poly, r, _mm512_set1_ps(1.3981999507e-3f));
  poly = _mm512_fmadd_ps(poly, r, _mm512_set1_ps(8.3334519073e-3f));
  poly = _mm512_fmadd_ps(poly, r, _mm512_set1_ps(4.1665795894e-2f));
  poly = _mm512_fmadd_ps(poly, r, _mm512_set1_ps(1.6666665459e-1f));
  poly = _mm512_fmadd_ps(poly, r, _mm512_set1_ps(5.0000001201e-1f));
  const __m512 e = _mm512_add_ps(_mm512_fmadd_ps(poly, _mm512_mul_ps(r, r), r), _mm512_set1_ps(1.0f));
  return _mm512_scalef_ps(e, n);
}

// 1 / x for x ≥ 1 (here always 1 + e^y): the 14-bit estimate and one Newton step, within an ulp or two of the
// division at a fraction of its cost (divisions were the hottest instructions of this loop).
HAMLET_KERNEL_INLINE inline __m512 reciprocal512(__m512 x) {
  const __m512 r = _mm512_rcp14_ps(x);
  return _mm512_fmadd_ps(r, _mm512_fnmadd_ps(x, r, _mm512_set1_ps(1.0f)), r);
}

// tanh(x) = 2σ(2x) − 1, as kernel::tanh_of.
HAMLET_KERNEL_INLINE inline __m512 tanh512(__m512 x) {
  const __m512 t = exp512(_mm512_mul_ps(_mm512_set1_ps(-2.0f), x));
  return _mm512_fmsub_ps(_mm512_set1_ps(2.0f), reciprocal512(_mm512_add_ps(_mm512_set1_ps(1.0f), t)),
                         _mm512_set1_ps(1.0f));
}

// Mask of the lanes j0 .. min(n, j0 + 16) − 1.
HAMLET_KERNEL_INLINE inline __mmask16 lanes(int64_t n, int64_t j0) {
  const int64_t m = n - j0;
  return m >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << m) - 1u);
}

// Accumulates in[r][k] · wt[k] for k < kk into acc[r] (rows of `in` `stride` apart).
template <int NV, int RT>
HAMLET_KERNEL_INLINE inline void accumulate(__m512 (&acc)[RT][NV], const float* wt, const float* in, int64_t stride, int64_t kk) {
  for (int64_t k = 0; k < kk; ++k) {
    __m512 w[NV];
    for (int v = 0; v < NV; ++v) w[v] = _mm512_loadu_ps(wt + k * 16 * NV + 16 * v);
    for (int r = 0; r < RT; ++r) {
      const __m512 x = _mm512_set1_ps(in[r * stride + k]);
      for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_fmadd_ps(x, w[v], acc[r][v]);
    }
  }
}

// s / (1 + exp(−s a)) − (s − 1) on the accumulators, stored to a [RT][16 NV].
template <int NV, int RT>
HAMLET_KERNEL_INLINE inline void activate(__m512 (&acc)[RT][NV], const float* scale, float* a) {
  for (int v = 0; v < NV; ++v) {
    const __m512 s = _mm512_loadu_ps(scale + 16 * v);
    const __m512 neg_s = _mm512_sub_ps(_mm512_setzero_ps(), s);
    const __m512 s_minus_1 = _mm512_sub_ps(s, _mm512_set1_ps(1.0f));
    for (int r = 0; r < RT; ++r) {
      const __m512 t = exp512(_mm512_mul_ps(neg_s, acc[r][v]));
      const __m512 y = _mm512_fmsub_ps(s, reciprocal512(_mm512_add_ps(_mm512_set1_ps(1.0f), t)), s_minus_1);
      _mm512_storeu_ps(a + r * 16 * NV + 16 * v, y);
    }
  }
}

// c' and h' of one row from its activations a [4H]; returns w_head · h' when head_w is given.
inline float cell512(int64_t n, const float* a, const float* cp, float* cn, float* hn, const float* head_w) {
  __m512 head = _mm512_setzero_ps();
  for (int64_t j0 = 0; j0 < n; j0 += 16) {
    const __mmask16 m = lanes(n, j0);
    const __m512 i = _mm512_maskz_loadu_ps(m, a + j0), f = _mm512_maskz_loadu_ps(m, a + n + j0);
    const __m512 g = _mm512_maskz_loadu_ps(m, a + 2 * n + j0), o = _mm512_maskz_loadu_ps(m, a + 3 * n + j0);
    const __m512 c = _mm512_fmadd_ps(f, _mm512_maskz_loadu_ps(m, cp + j0), _mm512_mul_ps(i, g));
    const __m512 h = _mm512_mul_ps(o, tanh512(c));
    _mm512_mask_storeu_ps(cn + j0, m, c);
    _mm512_mask_storeu_ps(hn + j0, m, h);
    if (head_w != nullptr) head = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, head_w + j0), h, head);
  }
  return head_w != nullptr ? _mm512_reduce_add_ps(head) : 0.0f;
}

template <int NV, int RT>
inline void tile512(const EvalWeights<float>& k, const Block<float>& b, int64_t r0) {
  const int64_t n = k.n, d = k.d;
  alignas(64) float a[RT][16 * NV];
  float x[RT][2];
  for (int r = 0; r < RT; ++r) features(k, b.g[r0 + r], x[r]);
  __m512 acc[RT][NV];
  // Layer 1: [x | h1].
  for (int v = 0; v < NV; ++v) {
    const __m512 bias = _mm512_loadu_ps(k.b1.data() + 16 * v);
    for (int r = 0; r < RT; ++r) acc[r][v] = bias;
  }
  accumulate<NV, RT>(acc, k.w1t.data(), &x[0][0], 2, d);
  accumulate<NV, RT>(acc, k.w1t.data() + d * 16 * NV, b.h1 + r0 * n, n, n);
  activate<NV, RT>(acc, k.scale.data(), &a[0][0]);
  for (int r = 0; r < RT; ++r) {
    const int64_t o = (r0 + r) * n;
    cell512(n, a[r], b.c1 + o, b.c1n + o, b.h1n + o, nullptr);
  }
  // Layer 2: [h1' | h2].
  for (int v = 0; v < NV; ++v) {
    const __m512 bias = _mm512_loadu_ps(k.b2.data() + 16 * v);
    for (int r = 0; r < RT; ++r) acc[r][v] = bias;
  }
  accumulate<NV, RT>(acc, k.w2t.data(), b.h1n + r0 * n, n, n);
  accumulate<NV, RT>(acc, k.w2t.data() + n * 16 * NV, b.h2 + r0 * n, n, n);
  activate<NV, RT>(acc, k.scale.data(), &a[0][0]);
  for (int r = 0; r < RT; ++r) {
    const int64_t o = (r0 + r) * n;
    const float u = cell512(n, a[r], b.c2 + o, b.c2n + o, b.h2n + o, k.head_w.data()) + k.head_b;
    b.theta_next[r0 + r] = b.theta[r0 + r] + u * k.out_mul;
  }
}

template <int NV>
void run_block512(const EvalWeights<float>& k, const Block<float>& b) {
  constexpr int kRows = 4;
  int64_t r = 0;
  for (; r + kRows <= b.rows; r += kRows) tile512<NV, kRows>(k, b, r);
  for (; r < b.rows; ++r) tile512<NV, 1>(k, b, r);
}

// ---- H = 20 (the protocols' width): gates interleaved so that the cell update stays in registers ----
//
// The weights' 80 gate columns are reordered (interleave_gates) to [i₀..₁₅ | f₀..₁₅ | g₀..₁₅ | o₀..₁₅ | i₁₆..₁₉ f₁₆..₁₉
// g₁₆..₁₉ o₁₆..₁₉]: the first four vectors of a row's gates are then i, f, g, o of units 0–15 lane by lane, and the
// fifth vectors of four rows, transposed in 128-bit quarters, are i, f, g, o of units 16–19 of those four rows. So
// c' and h' need no store and reload of the gates, and tanh(c') runs on 5 vectors per 4 rows instead of 8.

// σ (and tanh for g, via the scale) on the accumulators, in place.
template <int NV, int RT>
HAMLET_KERNEL_INLINE inline void activate_in_place(__m512 (&acc)[RT][NV], const float* scale) {
  for (int v = 0; v < NV; ++v) {
    const __m512 s = _mm512_loadu_ps(scale + 16 * v);
    const __m512 neg_s = _mm512_sub_ps(_mm512_setzero_ps(), s);
    const __m512 s_minus_1 = _mm512_sub_ps(s, _mm512_set1_ps(1.0f));
    for (int r = 0; r < RT; ++r) {
      const __m512 t = exp512(_mm512_mul_ps(neg_s, acc[r][v]));
      acc[r][v] = _mm512_fmsub_ps(s, reciprocal512(_mm512_add_ps(_mm512_set1_ps(1.0f), t)), s_minus_1);
    }
  }
}

// Units 16–19 of four rows 20 apart, as one vector (row r in lanes 4r .. 4r + 3), and back.
HAMLET_KERNEL_INLINE inline __m512 load_tails(const float* p) {
  __m512 x = _mm512_castps128_ps512(_mm_loadu_ps(p + 16));
  x = _mm512_insertf32x4(x, _mm_loadu_ps(p + 36), 1);
  x = _mm512_insertf32x4(x, _mm_loadu_ps(p + 56), 2);
  return _mm512_insertf32x4(x, _mm_loadu_ps(p + 76), 3);
}
HAMLET_KERNEL_INLINE inline void store_tails(float* p, __m512 x) {
  _mm_storeu_ps(p + 16, _mm512_castps512_ps128(x));
  _mm_storeu_ps(p + 36, _mm512_extractf32x4_ps(x, 1));
  _mm_storeu_ps(p + 56, _mm512_extractf32x4_ps(x, 2));
  _mm_storeu_ps(p + 76, _mm512_extractf32x4_ps(x, 3));
}

// c' and h' of four rows (states 20 apart from cp, cn, hn) from their activated, interleaved gates; with head_w,
// also u[r] = head_w · h'[r] + head_b.
HAMLET_KERNEL_INLINE inline void cell20(__m512 (&acc)[4][5], const float* cp, float* cn, float* hn, const float* head_w,
                   const __m512* head_tail, float head_b, float* u) {
  __m512 head[4];
  for (int r = 0; r < 4; ++r) {
    const __m512 c = _mm512_fmadd_ps(acc[r][1], _mm512_loadu_ps(cp + 20 * r), _mm512_mul_ps(acc[r][0], acc[r][2]));
    const __m512 h = _mm512_mul_ps(acc[r][3], tanh512(c));
    _mm512_storeu_ps(cn + 20 * r, c);
    _mm512_storeu_ps(hn + 20 * r, h);
    if (head_w != nullptr) head[r] = _mm512_mul_ps(_mm512_loadu_ps(head_w), h);
  }
  const __m512 t0 = _mm512_shuffle_f32x4(acc[0][4], acc[1][4], 0x44);  // i₀ f₀ i₁ f₁
  const __m512 t1 = _mm512_shuffle_f32x4(acc[0][4], acc[1][4], 0xEE);  // g₀ o₀ g₁ o₁
  const __m512 t2 = _mm512_shuffle_f32x4(acc[2][4], acc[3][4], 0x44);  // i₂ f₂ i₃ f₃
  const __m512 t3 = _mm512_shuffle_f32x4(acc[2][4], acc[3][4], 0xEE);  // g₂ o₂ g₃ o₃
  const __m512 i = _mm512_shuffle_f32x4(t0, t2, 0x88), f = _mm512_shuffle_f32x4(t0, t2, 0xDD);
  const __m512 g = _mm512_shuffle_f32x4(t1, t3, 0x88), o = _mm512_shuffle_f32x4(t1, t3, 0xDD);
  const __m512 c = _mm512_fmadd_ps(f, load_tails(cp), _mm512_mul_ps(i, g));
  const __m512 h = _mm512_mul_ps(o, tanh512(c));
  store_tails(cn, c);
  store_tails(hn, h);
  if (head_w != nullptr) {
    const __m512 tail = _mm512_mul_ps(*head_tail, h);
    for (int r = 0; r < 4; ++r) {
      const __m512 row_tail = _mm512_maskz_mov_ps(static_cast<__mmask16>(0xfu << (4 * r)), tail);
      u[r] = _mm512_reduce_add_ps(_mm512_add_ps(head[r], row_tail)) + head_b;
    }
  }
}

// The gates of four rows: bias + in1 · wt[0 .. k1) + in2 · wt[k1 .. k1 + k2) (rows of in1 s1 apart, of in2 s2 apart).
// Not inlined on purpose: on its own the loop keeps its 20 accumulators and 5 weight vectors in registers, while inlined
// into tile20 it competes with the activation's constants and spills accumulators in its innermost loop.
// The accumulators are a local array, copied out at the end: __m512 may alias any float, so accumulating into `out`
// would make the compiler store them after every input.
__attribute__((noinline)) void gates20(__m512 (&out)[4][5], const float* bias, const float* wt, const float* in1,
                                       int64_t s1, int64_t k1, const float* in2, int64_t s2, int64_t k2) {
  __m512 acc[4][5];
  for (int v = 0; v < 5; ++v) {
    const __m512 b = _mm512_loadu_ps(bias + 16 * v);
    for (int r = 0; r < 4; ++r) acc[r][v] = b;
  }
  accumulate<5, 4>(acc, wt, in1, s1, k1);
  accumulate<5, 4>(acc, wt + k1 * 80, in2, s2, k2);
  for (int r = 0; r < 4; ++r) {
    for (int v = 0; v < 5; ++v) out[r][v] = acc[r][v];
  }
}

// Rows r0 .. r0 + 3 of a block, H = 20, weights interleaved.
inline void tile20(const EvalWeights<float>& k, const Block<float>& b, int64_t r0) {
  constexpr int64_t n = 20;
  const int64_t d = k.d;
  float x[4][2];
  for (int r = 0; r < 4; ++r) features(k, b.g[r0 + r], x[r]);
  __m512 head_tail = _mm512_setzero_ps();
  for (int r = 0; r < 4; ++r) head_tail = _mm512_mask_loadu_ps(head_tail, static_cast<__mmask16>(0xfu << (4 * r)),
                                                               k.head_w.data() + 16 - 4 * r);
  __m512 acc[4][5];
  gates20(acc, k.b1.data(), k.w1t.data(), &x[0][0], 2, d, b.h1 + r0 * n, n, n);
  activate_in_place<5, 4>(acc, k.scale.data());
  cell20(acc, b.c1 + r0 * n, b.c1n + r0 * n, b.h1n + r0 * n, nullptr, nullptr, 0.0f, nullptr);
  gates20(acc, k.b2.data(), k.w2t.data(), b.h1n + r0 * n, n, n, b.h2 + r0 * n, n, n);
  activate_in_place<5, 4>(acc, k.scale.data());
  float u[4];
  cell20(acc, b.c2 + r0 * n, b.c2n + r0 * n, b.h2n + r0 * n, k.head_w.data(), &head_tail, k.head_b, u);
  for (int r = 0; r < 4; ++r) b.theta_next[r0 + r] = b.theta[r0 + r] + u[r] * k.out_mul;
}

// A block with H = 20: whole tiles of four rows in place; the last rows (fewer than four) through a padded copy.
void run_block20(const EvalWeights<float>& k, const Block<float>& b) {
  constexpr int64_t n = 20;
  int64_t r = 0;
  for (; r + 4 <= b.rows; r += 4) tile20(k, b, r);
  const int64_t rest = b.rows - r;
  if (rest == 0) return;
  alignas(64) float in[6][4 * n] = {};
  alignas(64) float out[5][4 * n];
  Block<float> p;
  p.rows = 4;
  p.theta = in[0], p.g = in[1], p.h1 = in[2], p.c1 = in[3], p.h2 = in[4], p.c2 = in[5];
  p.theta_next = out[0], p.h1n = out[1], p.c1n = out[2], p.h2n = out[3], p.c2n = out[4];
  std::copy(b.theta + r, b.theta + r + rest, in[0]);
  std::copy(b.g + r, b.g + r + rest, in[1]);
  const float* states[4] = {b.h1, b.c1, b.h2, b.c2};
  for (int s = 0; s < 4; ++s) std::copy(states[s] + r * n, states[s] + (r + rest) * n, in[2 + s]);
  tile20(k, p, 0);
  std::copy(out[0], out[0] + rest, b.theta_next + r);
  float* next[4] = {b.h1n, b.c1n, b.h2n, b.c2n};
  for (int s = 0; s < 4; ++s) std::copy(out[1 + s], out[1 + s] + rest * n, next[s] + r * n);
}

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC diagnostic pop
#pragma GCC pop_options
#endif

// The gate columns of the weights, biases and scales in run_block20's interleaved order.
void interleave_gates(EvalWeights<float>& k) {
  constexpr int64_t n = 20;
  std::vector<int64_t> from(4 * n);
  for (int64_t q = 0; q < 4; ++q) {
    for (int64_t j = 0; j < 16; ++j) from[static_cast<std::size_t>(16 * q + j)] = n * q + j;
    for (int64_t t = 0; t < 4; ++t) from[static_cast<std::size_t>(64 + 4 * q + t)] = n * q + 16 + t;
  }
  const auto permute = [&](std::vector<float>& m) {
    const std::vector<float> old = m;
    const std::size_t rows = m.size() / from.size();
    for (std::size_t i = 0; i < rows; ++i) {
      for (std::size_t c = 0; c < from.size(); ++c) m[i * from.size() + c] = old[i * from.size() + static_cast<std::size_t>(from[c])];
    }
  };
  for (auto* m : {&k.w1t, &k.b1, &k.w2t, &k.b2, &k.scale}) permute(*m);
}

using Block512 = void (*)(const EvalWeights<float>&, const Block<float>&);

// The AVX-512 loop for this H, or null where it does not apply (no AVX-512, 4H not 16 · NV with NV ≤ 6).
Block512 block512_for(int64_t n) {
  static const bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma");
  if (!avx512 || (4 * n) % 16 != 0) return nullptr;
  switch (4 * n / 16) {
    case 1: return run_block512<1>;
    case 2: return run_block512<2>;
    case 3: return run_block512<3>;
    case 4: return run_block512<4>;
    case 5: return run_block512<5>;
    case 6: return run_block512<6>;
    default: return nullptr;
  }
}

// One parameter tensor's inputs (contiguous, compute dtype) and outputs; its blocks are tasks.
struct TensorIo {
  at::Tensor theta, g, s[4], theta_next, s_next[4];
};
struct Task {
  std::size_t tensor;
  int64_t begin, end;
};

template <typename T>
optim::StepResult run(const LstmOptions& o, const TensorList& weights, const TensorList& params,
                      const TensorList& grads, const optim::OptimizerState& state, const at::TensorOptions& opts) {
  EvalWeights<T> k = make_weights<T>(o, weights, opts);
  const int64_t n = k.n;
  Block512 fast = nullptr;
  if constexpr (std::is_same_v<T, float>) {
    fast = block512_for(n);
    if (fast != nullptr && n == 20) {
      fast = run_block20;
      interleave_gates(k);
    }
  }

  // Inputs and outputs per parameter tensor, then the blocks of all tensors as one list of tasks.
  std::vector<TensorIo> ts(params.size());
  std::vector<Task> tasks;
  optim::StepResult result;
  result.state.step = state.step + 1;
  for (std::size_t i = 0; i < params.size(); ++i) {
    TensorIo& t = ts[i];
    const int64_t numel = params[i].numel();
    t.theta = params[i].contiguous();
    t.g = grads[i].to(opts).contiguous();
    HAMLET_CHECK(t.g.numel() == numel, "lstm blocked kernel: gradient ", i, " has ", t.g.numel(),
                 " values for a parameter of shape ", params[i].sizes());
    std::vector<int64_t> shape(params[i].sizes().begin(), params[i].sizes().end());
    t.theta_next = at::empty(shape, opts);
    shape.push_back(n);
    for (int s = 0; s < 4; ++s) {
      t.s[s] = state.slots.at(kSlotNames[s])[i].to(opts).contiguous();
      HAMLET_CHECK(t.s[s].numel() == numel * n, "lstm blocked kernel: state '", kSlotNames[s], "' ", i, " has shape ",
                   t.s[s].sizes(), ", expected ", at::IntArrayRef(shape));
      t.s_next[s] = at::empty(shape, opts);
    }
    for (int64_t c = 0; c < chunk_count(numel, kLstmEvalBlock); ++c) {
      tasks.push_back({i, c * kLstmEvalBlock, std::min(numel, (c + 1) * kLstmEvalBlock)});
    }
  }
  for_each_chunk(static_cast<int64_t>(tasks.size()), 1, [&](int64_t c, int64_t, int64_t) {
    const Task& task = tasks[static_cast<std::size_t>(c)];
    const TensorIo& t = ts[task.tensor];
    const int64_t r0 = task.begin;
    Block<T> b;
    b.rows = task.end - task.begin;
    b.theta = t.theta.data_ptr<T>() + r0;
    b.g = t.g.data_ptr<T>() + r0;
    b.h1 = t.s[0].data_ptr<T>() + r0 * n;
    b.c1 = t.s[1].data_ptr<T>() + r0 * n;
    b.h2 = t.s[2].data_ptr<T>() + r0 * n;
    b.c2 = t.s[3].data_ptr<T>() + r0 * n;
    b.theta_next = t.theta_next.data_ptr<T>() + r0;
    b.h1n = t.s_next[0].data_ptr<T>() + r0 * n;
    b.c1n = t.s_next[1].data_ptr<T>() + r0 * n;
    b.h2n = t.s_next[2].data_ptr<T>() + r0 * n;
    b.c2n = t.s_next[3].data_ptr<T>() + r0 * n;
    if constexpr (std::is_same_v<T, float>) {
      if (fast != nullptr) {
        fast(k, b);
        return;
      }
      std::vector<float> a(static_cast<std::size_t>(4 * n));
      run_block_plain_float(k, b, a.data());
    } else {
      std::vector<double> a(static_cast<std::size_t>(4 * n));
      run_block_plain_double(k, b, a.data());
    }
  });
  for (std::size_t i = 0; i < params.size(); ++i) {
    result.params.push_back(ts[i].theta_next);
    for (int s = 0; s < 4; ++s) result.state.slots[kSlotNames[s]].push_back(ts[i].s_next[s]);
  }
  return result;
}

}  // namespace

bool lstm_update_blocked_applies(const TensorList& params, const TensorList& grads, const optim::OptimizerState& state,
                                 const TensorList& weights, const at::TensorOptions& opts) {
  if (!(opts.device().is_cpu() && (opts.dtype() == at::kFloat || opts.dtype() == at::kDouble))) return false;
  if (params.empty() || grads.size() != params.size()) return false;
  for (const auto& w : weights) {
    if (w.requires_grad() || !w.device().is_cpu()) return false;
  }
  for (const char* name : kSlotNames) {
    const auto it = state.slots.find(name);
    if (it == state.slots.end() || it->second.size() != params.size()) return false;
    for (const auto& x : it->second) {
      if (x.requires_grad() || !x.device().is_cpu()) return false;
    }
  }
  for (std::size_t i = 0; i < params.size(); ++i) {
    const at::Tensor &p = params[i], &g = grads[i];
    if (p.dim() < 1 || p.scalar_type() != opts.dtype() || !p.device().is_cpu() || !g.device().is_cpu() ||
        p.requires_grad() || g.requires_grad())
      return false;
  }
  return true;
}

optim::StepResult lstm_update_blocked(const LstmOptions& options, const TensorList& weights, const TensorList& params,
                                      const TensorList& grads, const optim::OptimizerState& state,
                                      const at::TensorOptions& opts) {
  HAMLET_CHECK(lstm_update_blocked_applies(params, grads, state, weights, opts),
               "lstm: the blocked evaluation kernel needs CPU float32/float64 parameters of the compute dtype, the "
               "four state slots and no autograd");
  if (opts.dtype() == at::kDouble) return run<double>(options, weights, params, grads, state, opts);
  return run<float>(options, weights, params, grads, state, opts);
}

}  // namespace hamlet::learned
