#pragma once
// The minibatch sequence of tasks that draw minibatches from a fixed set of rows (mlp, cnn, tabular): problem b
// visits the n rows in its own random order, fresh for every pass over them, drawn from mix_seed(problem seed,
// pass + 1) alone (stream 0 of a problem's seed is its initialisation), so a problem's minibatches do not depend on
// the batch it is drawn in and problem i alone equals problem i of any batch. A pass's last incomplete minibatch
// is skipped. Passes are drawn on demand and kept.
#include <ATen/ATen.h>

#include <cstdint>
#include <string>
#include <vector>

namespace hamlet::tasks {

class MinibatchOrder {
 public:
  // `owner` names the task in errors. rows >= batch_size > 0.
  MinibatchOrder(std::vector<uint64_t> problem_seeds, int64_t rows, int64_t batch_size, std::string owner);
  // Row indices of every problem's minibatch at step `step` (>= 0): [B, batch_size] int64, on the CPU.
  at::Tensor indices(int64_t step) const;

 private:
  std::vector<uint64_t> problem_seeds_;
  int64_t rows_, batch_size_;
  std::string owner_;
  mutable std::vector<at::Tensor> orders_;  // [B, rows] per pass
};

}  // namespace hamlet::tasks
