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

// The loop the kernels' hidden units run: one tanh per value, vectorised across values. Each sweep shifts its input
// by a little so that the compiler cannot hoist the work out of the sweep loop.
#if defined(__GNUC__) && defined(__x86_64__)
__attribute__((target_clones("avx512f", "avx2", "default")))
#endif
float tanh_sweeps(const float* x, float* y) {
  float checksum = 0.0f;
  for (int s = 0; s < kSweeps; ++s) {
    const float shift = 1e-3f * static_cast<float>(s);
    for (int64_t i = 0; i < kValues; ++i) y[i] = kernel::tanh_of(x[i] + shift);
    checksum += y[s % kValues];
  }
  return checksum;
}

}  // namespace

double measure_tanh_ns(int repeats) {
  std::vector<float> x(kValues), y(kValues);
  // Inputs across [−4, 4], where tanh is neither linear nor saturated.
  for (int64_t i = 0; i < kValues; ++i) x[i] = -4.0f + 8.0f * static_cast<float>(i) / static_cast<float>(kValues);
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
