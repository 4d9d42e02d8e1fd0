#include "hamlet/core/parallel.hpp"

namespace hamlet::detail {

void run_chunk_ranges(int64_t chunks, const std::function<void(int64_t first, int64_t last)>& run) {
  at::parallel_for(0, chunks, 1, run);
}

}  // namespace hamlet::detail
