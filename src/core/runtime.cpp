#include "hamlet/core/runtime.hpp"

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace hamlet {

void tune_allocator() {
#if defined(__GLIBC__)
  constexpr int kOneGiB = 1 << 30;
  // Serve every block from the heap (no per-block mmap), and never give freed heap back to the OS.
  mallopt(M_MMAP_MAX, 0);
  mallopt(M_TRIM_THRESHOLD, kOneGiB);
  mallopt(M_TOP_PAD, kOneGiB / 4);
#endif
}

}  // namespace hamlet
