#pragma once
// Splitting a fused per-coordinate loop over torch's intra-op threads (`--threads`, at::set_num_threads in C++,
// torch.set_num_threads in Python) so that its results do not depend on the thread count.
//
// [0, n) is cut into chunks of a fixed size that the caller chooses (never from the thread count); the chunks are
// shared out over the threads (claimed one at a time by at::parallel_for's workers), each runs on one thread, and whatever a chunk sums (a per-tensor
// mean, a norm) goes into that chunk's own slot, combined afterwards in chunk order. So a kernel gives the same bits
// on 1, 2 or 16 threads, and a reduction over a tensor is the two-pass pattern: partial sums per chunk, then the
// ordered total, then the pass that uses it.
#include <ATen/Parallel.h>

#include <algorithm>
#include <cstdint>
#include <functional>

namespace hamlet {

namespace detail {
// Runs run(c, c + 1) for every c in [0, chunks) on torch's intra-op threads (at::parallel_for over one worker per
// thread, each worker claiming chunks until none is left, so unequal chunks still balance).
// Defined in src/core/parallel.cpp, the one file compiled with OpenMP: libtorch 1.13's at::parallel_for is an
// inline OpenMP region, so in a file compiled without -fopenmp it would run everything on the calling thread.
void run_chunk_ranges(int64_t chunks, const std::function<void(int64_t first, int64_t last)>& run);
// Whether that file was built with OpenMP (GCC builds; the clang-built sanitized tests run the chunks in order on
// the calling thread, with the same results).
bool chunks_use_threads();
}  // namespace detail

// Number of chunks of `chunk` rows covering [0, n) (0 for n = 0).
inline int64_t chunk_count(int64_t n, int64_t chunk) { return n <= 0 ? 0 : (n + chunk - 1) / chunk; }

// Calls f(c, begin, end) for every chunk c = 0 .. chunk_count(n, chunk) − 1 with [begin, end) = its rows, the chunks
// spread over torch's intra-op threads (in order on one thread when there is one thread or one chunk). f must only
// write to rows [begin, end) of its outputs and to per-chunk slots; exceptions propagate to the caller.
template <typename F>
void for_each_chunk(int64_t n, int64_t chunk, const F& f) {
  const int64_t chunks = chunk_count(n, chunk);
  if (chunks == 0) return;
  const auto run = [&](int64_t first, int64_t last) {
    for (int64_t c = first; c < last; ++c) f(c, c * chunk, std::min(n, (c + 1) * chunk));
  };
  if (chunks == 1 || at::get_num_threads() == 1 || at::in_parallel_region()) {
    run(0, chunks);
    return;
  }
  detail::run_chunk_ranges(chunks, run);
}

}  // namespace hamlet
