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

HAMLET_KERNEL_INLINE inline float exp_of(float x) { return exp_vectorisable(x); }
HAMLET_KERNEL_INLINE inline double exp_of(double x) { return std::exp(x); }

// σ(x) = 1 / (1 + e^−x).
template <typename T>
HAMLET_KERNEL_INLINE inline T sigmoid_of(T x) {
  return T(1) / (T(1) + exp_of(-x));
}

// fast_tanh's formula 2σ(2x) − 1, so that the fused and the tensor paths round alike.
template <typename T>
HAMLET_KERNEL_INLINE inline T tanh_of(T x) {
  return T(2) / (T(1) + exp_of(T(-2) * x)) - T(1);
}

}  // namespace hamlet::learned::kernel
