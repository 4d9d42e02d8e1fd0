#pragma once
// Scalar math for hamlet's fused loops (phnn_kernel.cpp, lstm_kernel.cpp), written so that GCC vectorises the
// loops that call it. Private to src/learned; a file that includes it is compiled with -fno-trapping-math
// (CMakeLists.txt), so that the selects below are if-converted.
#include <cmath>
#include <cstdint>
#include <cstring>

// Everything a loop calls is inlined into its ISA clones (target_clones), so each clone's loops use its vectors.
#define HAMLET_KERNEL_INLINE __attribute__((always_inline))

namespace hamlet::learned::kernel {

// exp(x) in float32 without calls or branches: x = n ln 2 + r with |r| ≤ ln 2 / 2 (Cody–Waite split of ln 2),
// exp(r) by the degree-5 minimax polynomial of Cephes' expf, 2ⁿ from the exponent bits. Inputs are clamped to
// [−87, 88], where 2ⁿ stays a normal float; NaN stays NaN. The tanh built from it is within 2.4e-7 of tanh, as
// fast_tanh (tests/learned/test_phnn_kernel.cpp).
HAMLET_KERNEL_INLINE inline float exp_vectorisable(float x) {
  const bool nan = x != x;
  float c = nan ? 0.0f : x;
  c = c < -87.0f ? -87.0f : c;
  c = c > 88.0f ? 88.0f : c;
  const float n = (c * 1.44269504088896341f + 12582912.0f) - 12582912.0f;  // round to nearest via 1.5·2²³
  float r = c - n * 0.693359375f;
  r = r + n * 2.12194440e-4f;
  float poly = 1.9875691500e-4f;
  poly = poly * r + 1.3981999507e-3f;
  poly = poly * r + 8.3334519073e-3f;
  poly = poly * r + 4.1665795894e-2f;
  poly = poly * r + 1.6666665459e-1f;
  poly = poly * r + 5.0000001201e-1f;
  const float e = poly * r * r + r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  const float y = e * scale;
  return nan ? x : y;
}

// log(x) in float32 without calls or branches, for x > 0 (Cephes' logf): x = m 2ᵉ with m in [√½, √2) from the
// bits, log(m) by its degree-8 polynomial in m − 1, e ln 2 added in two parts. 0 gives −88.7 (a finite stand-in:
// callers here pass x ≥ 1), NaN and negative inputs are the caller's business.
HAMLET_KERNEL_INLINE inline float log_vectorisable(float x) {
  int32_t bits;
  std::memcpy(&bits, &x, sizeof bits);
  float e = static_cast<float>(((bits >> 23) & 0xff) - 126);
  bits = (bits & 0x807fffff) | 0x3f000000;  // mantissa in [0.5, 1)
  float m;
  std::memcpy(&m, &bits, sizeof m);
  const bool low = m < 0.707106781186547524f;
  e = low ? e - 1.0f : e;
  m = low ? m + m - 1.0f : m - 1.0f;
  const float z = m * m;
  float y = 7.0376836292e-2f;
  y = y * m - 1.1514610310e-1f;
  y = y * m + 1.1676998740e-1f;
  y = y * m - 1.2420140846e-1f;
  y = y * m + 1.4249322787e-1f;
  y = y * m - 1.6668057665e-1f;
  y = y * m + 2.0000714765e-1f;
  y = y * m - 2.4999993993e-1f;
  y = y * m + 3.3333331174e-1f;
  y = y * m * z;
  y = y - 2.12194440e-4f * e;
  y = y - 0.5f * z;
  return (m + y) + 0.693359375f * e;
}

HAMLET_KERNEL_INLINE inline float exp_of(float x) { return exp_vectorisable(x); }
HAMLET_KERNEL_INLINE inline double exp_of(double x) { return std::exp(x); }

// at::softplus with beta 1 and threshold 20: x above 20, else log(1 + eˣ) = max(x, 0) + log1p(e^−|x|), with
// log1p(t) = log(u) · t / (u − 1) for u = 1 + t (exact to rounding; t where u rounds to 1). float32 without calls
// (the loops that use it vectorise); float64 with std::log1p.
HAMLET_KERNEL_INLINE inline float softplus_of(float x) {
  const float t = exp_vectorisable(x < 0.0f ? x : -x);
  const float u = 1.0f + t;
  const float log1p_t = u == 1.0f ? t : log_vectorisable(u) * t / (u - 1.0f);
  const float y = (x > 0.0f ? x : 0.0f) + log1p_t;
  return x > 20.0f ? x : (x != x ? x : y);
}
HAMLET_KERNEL_INLINE inline double softplus_of(double x) { return x > 20.0 ? x : std::log1p(std::exp(x)); }

// fast_tanh's formula 2σ(2x) − 1, so that the fused and the tensor paths round alike.
template <typename T>
HAMLET_KERNEL_INLINE inline T tanh_of(T x) {
  return T(2) / (T(1) + exp_of(T(-2) * x)) - T(1);
}

// ---- float32 lanes (GCC vector extensions, also understood by clang) ----
// 16 floats: one AVX-512 vector, two AVX2 or four SSE2 vectors in a file's ISA clones. For loops that keep 16
// coordinates of each output in a register across a network's hidden units (phnn_kernel.cpp), and for the
// activation rate the benchmark prices (activation_rate.cpp).
// Every function taking or returning these vectors is inlined into the ISA clones, so no call passes them by value
// (the ABI note GCC gives for 64-byte vectors outside AVX-512 code does not apply).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wpsabi"
#endif
typedef float LaneF __attribute__((vector_size(64)));
typedef int32_t LaneI __attribute__((vector_size(64)));

HAMLET_KERNEL_INLINE inline LaneF splat(float x) { return LaneF{} + x; }
HAMLET_KERNEL_INLINE inline LaneF load_lanes(const float* x) {
  LaneF v;
  std::memcpy(&v, x, sizeof v);
  return v;
}
HAMLET_KERNEL_INLINE inline void store_lanes(float* x, const LaneF& v) { std::memcpy(x, &v, sizeof v); }

// exp_vectorisable on 16 lanes, the same operations in the same order. A NaN needs no select here: it
// passes both clamps (comparisons with NaN are false) and every product after them.
HAMLET_KERNEL_INLINE inline LaneF exp_lanes(const LaneF& x) {
  LaneF c = x < splat(-87.0f) ? splat(-87.0f) : x;
  c = c > splat(88.0f) ? splat(88.0f) : c;
  // n = round(c / ln 2) via 1.5·2²³, whose float carries n in its low mantissa bits: (bits + 127) << 23 is 2ⁿ's
  // bit pattern directly (the high bits shift out), without a float-to-int conversion.
  const LaneF shifted = c * 1.44269504088896341f + 12582912.0f;
  const LaneF n = shifted - 12582912.0f;
  LaneF r = c - n * 0.693359375f;
  r = r + n * 2.12194440e-4f;
  LaneF poly = splat(1.9875691500e-4f);
  poly = poly * r + 1.3981999507e-3f;
  poly = poly * r + 8.3334519073e-3f;
  poly = poly * r + 4.1665795894e-2f;
  poly = poly * r + 1.6666665459e-1f;
  poly = poly * r + 5.0000001201e-1f;
  const LaneF e = poly * r * r + r + 1.0f;
  LaneI bits;
  std::memcpy(&bits, &shifted, sizeof bits);
  bits = (bits + 127) << 23;
  LaneF scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return e * scale;
}

// tanh_of(x) = 2σ(2x) − 1 = 2 / (1 + e^(−2x)) − 1, given z = −2x. The callers compute z from first-layer
// weights and biases scaled by −2, which is exact (a power of two), so z is −2x bit for bit.
HAMLET_KERNEL_INLINE inline LaneF tanh_of_neg2(const LaneF& z) { return 2.0f / (1.0f + exp_lanes(z)) - 1.0f; }

// Preprocessing P(x) of preprocess.hpp (p = its kPreprocessP) without branches, so that a loop over coordinates
// vectorises: both arms are computed and one selected, as at::where does (a NaN takes the small arm: −1 and
// eᵖ · NaN). The constants are rounded to T as ATen rounds a scalar operand to the tensor's dtype. float32 takes the
// call-free log (within a few ulp of logf), float64 std::log.
HAMLET_KERNEL_INLINE inline float log_of(float x) { return log_vectorisable(x); }
HAMLET_KERNEL_INLINE inline double log_of(double x) { return std::log(x); }

template <typename T>
HAMLET_KERNEL_INLINE inline void preprocess_select(T x, double p, T* out) {
  const T threshold = static_cast<T>(std::exp(-p));
  const T magnitude = x < T(0) ? -x : x;
  const bool large = magnitude >= threshold;
  const T log_feature = log_of(magnitude + static_cast<T>(1e-8)) / static_cast<T>(p);
  const T sign = x > T(0) ? T(1) : (x < T(0) ? T(-1) : T(0));
  out[0] = large ? log_feature : T(-1);
  out[1] = large ? sign : x * static_cast<T>(std::exp(p));
}

}  // namespace hamlet::learned::kernel
