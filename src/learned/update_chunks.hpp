#pragma once
// Work items of a fused update that reads parameters, gradients and state straight from their tensors
// (phnn_kernel.cpp, phnn_paper_kernel.cpp). Private to src/learned.
//
// A learned optimizer's rows are every tensor [B, ...] flattened and concatenated (learned_optimizer.hpp to_rows);
// problem b of tensor i is the contiguous range [b n_i, (b + 1) n_i) of that tensor's storage. Each such segment is
// cut into pieces of a fixed number of coordinates, and the pieces, listed tensor by tensor, problem by problem, in
// order, are the chunks hamlet::for_each_chunk shares out over the threads (one item per chunk). A piece never
// crosses a segment, so per-problem and per-tensor sums are per-item partial sums added in item order afterwards:
// the result is the same on any number of threads.
#include <ATen/ATen.h>

#include <algorithm>
#include <cstdint>
#include <vector>

namespace hamlet::learned::chunks {

// Coordinates per work item: a few hundred kB of state per item (enough to amortise the scheduling), a multiple
// of every kernel's block.
constexpr int64_t kItemCoordinates = 8192;

struct Item {
  int64_t tensor;   // index into the parameter list
  int64_t problem;  // b
  int64_t begin;    // first coordinate, an offset into the tensor's flat storage
  int64_t end;
};

// The items covering every tensor [B, ...] of `like` (all with the same B).
inline std::vector<Item> items(const std::vector<at::Tensor>& like, int64_t piece = kItemCoordinates) {
  std::vector<Item> out;
  for (std::size_t i = 0; i < like.size(); ++i) {
    const int64_t problems = like[i].dim() == 0 ? 1 : like[i].size(0);
    const int64_t per_problem = problems == 0 ? 0 : like[i].numel() / problems;
    for (int64_t b = 0; b < problems; ++b) {
      for (int64_t first = 0; first < per_problem; first += piece) {
        out.push_back({static_cast<int64_t>(i), b, b * per_problem + first,
                       b * per_problem + std::min(per_problem, first + piece)});
      }
    }
  }
  return out;
}

}  // namespace hamlet::learned::chunks
