#include "hamlet/core/parallel.hpp"

namespace hamlet::detail {

void run_chunk_ranges(int64_t chunks, const std::function<void(int64_t first, int64_t last)>& run) {
  at::parallel_for(0, chunks, 1, run);
}

bool chunks_use_threads() {
#ifdef _OPENMP
  return true;
#else
  return false;
#endif
}

}  // namespace hamlet::detail
