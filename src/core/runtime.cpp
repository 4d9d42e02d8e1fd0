#include "hamlet/core/runtime.hpp"

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace hamlet {

void tune_allocator() {
#if defined(__GLIBC__)
  constexpr int kOneGiB = 1 << 30;
  mallopt(M_MMAP_THRESHOLD, kOneGiB);
  mallopt(M_TRIM_THRESHOLD, kOneGiB);
  mallopt(M_TOP_PAD, kOneGiB / 4);
#endif
}

}  // namespace hamlet
