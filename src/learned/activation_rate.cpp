#include "hamlet/learned/activation_rate.hpp"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <limits>
#include <vector>

#include "kernel_math.hpp"

namespace hamlet::learned {
namespace {

constexpr int64_t kValues = 2048;  // 8 KiB in and out: an L1-resident buffer, so the loads cost nothing
constexpr int kSweeps = 256;       // ~0.5M values per timing, a fraction of a millisecond

// The loop the kernels' hidden units run: one tanh per value, 16 values to a vector, from z = −2x as the kernels
// compute it (tanh_of_neg2, the cheaper of kernel_math.hpp's two tanh: no NaN selects). Each sweep shifts its input
// by a little so that the compiler cannot hoist the work out of the sweep loop. A template inlined into the clones
// below, as phnn_kernel.cpp's lane loops are: clang rejects 64-byte vector values in a non-template function of a
// clone without AVX-512.
template <typename Lane>
HAMLET_KERNEL_INLINE inline float sweeps(const float* z, float* y) {
  float checksum = 0.0f;
  for (int s = 0; s < kSweeps; ++s) {
    const Lane shift = kernel::splat(1e-3f * static_cast<float>(s));
    for (int64_t i = 0; i < kValues; i += 16) {
      kernel::store_lanes(y + i, kernel::tanh_of_neg2(kernel::load_lanes(z + i) + shift));
    }
    checksum += y[s % kValues];
  }
  return checksum;
}

#if defined(__GNUC__) && defined(__x86_64__)
__attribute__((target_clones("avx512f", "avx2", "default")))
#endif
float tanh_sweeps(const float* z, float* y) {
  return sweeps<kernel::LaneF>(z, y);
}

}  // namespace

double measure_tanh_ns(int repeats) {
  std::vector<float> x(kValues), y(kValues);
  // tanh's arguments across [−4, 4], where it is neither linear nor saturated (z = −2x across [−8, 8]).
  for (int64_t i = 0; i < kValues; ++i) x[i] = 8.0f - 16.0f * static_cast<float>(i) / static_cast<float>(kValues);
  volatile float sink = tanh_sweeps(x.data(), y.data());
  double best = std::numeric_limits<double>::infinity();
  for (int r = 0; r < std::max(1, repeats); ++r) {
    const auto start = std::chrono::steady_clock::now();
    sink = tanh_sweeps(x.data(), y.data());
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  (void)sink;
  return 1e9 * best / (static_cast<double>(kSweeps) * static_cast<double>(kValues));
}

}  // namespace hamlet::learned
