// hamlet::for_each_chunk (core/parallel.hpp): every chunk once with its rows, and really on several threads when
// torch has several (libtorch's at::parallel_for is an inline OpenMP region, which a file compiled without OpenMP
// silently runs on one thread).
#include "support/catch.hpp"

#include <ATen/Parallel.h>

#include <mutex>
#include <set>
#include <vector>

#include "hamlet/core/parallel.hpp"

TEST_CASE("for_each_chunk: fixed chunks, each once, spread over the intra-op threads") {
  CHECK(hamlet::chunk_count(0, 4) == 0);
  CHECK(hamlet::chunk_count(9, 4) == 3);
  const int before = at::get_num_threads();
  for (const int threads : {1, 2}) {
    at::set_num_threads(threads);
    std::vector<int64_t> begins(3, -1), ends(3, -1);
    std::set<int> used;
    std::mutex mutex;
    hamlet::for_each_chunk(9, 4, [&](int64_t c, int64_t begin, int64_t end) {
      std::lock_guard<std::mutex> lock(mutex);
      begins[static_cast<std::size_t>(c)] = begin;
      ends[static_cast<std::size_t>(c)] = end;
      used.insert(at::get_thread_num());
    });
    CHECK(begins == std::vector<int64_t>{0, 4, 8});
    CHECK(ends == std::vector<int64_t>{4, 8, 9});
    CHECK(static_cast<int>(used.size()) == (hamlet::detail::chunks_use_threads() ? threads : 1));
  }
  at::set_num_threads(before);
}
