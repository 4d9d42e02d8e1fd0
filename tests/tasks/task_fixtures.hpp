#pragma once
// Shared fixtures for the task tests: a synthetic MNIST-format dataset, so that the image tasks run without the
// real data, and the per-problem losses and gradients of a batch.
#include <torch/csrc/autograd/autograd.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "hamlet/core/tensor.hpp"
#include "hamlet/data/idx.hpp"
#include "hamlet/tasks/task.hpp"

namespace hamlet::test {

// n images of rows x cols pseudo-random bytes (a linear congruential generator started at `seed`), labels i % 10,
// as train-images-idx3-ubyte and `labels_file` (a name ending in .gz writes the labels gzipped).
inline void write_synthetic_idx(const std::filesystem::path& dir, int64_t n, int64_t rows, int64_t cols,
                                uint32_t seed, const std::string& labels_file) {
  data::IdxArray images{{n, rows, cols}, std::vector<uint8_t>(static_cast<std::size_t>(n * rows * cols))};
  data::IdxArray labels{{n}, std::vector<uint8_t>(static_cast<std::size_t>(n))};
  uint32_t state = seed;
  for (auto& v : images.values) {
    state = state * 1664525u + 1013904223u;
    v = static_cast<uint8_t>(state >> 24);
  }
  for (int64_t i = 0; i < n; ++i) labels.values[static_cast<std::size_t>(i)] = static_cast<uint8_t>(i % 10);
  data::write_idx((dir / "train-images-idx3-ubyte").string(), images);
  data::write_idx((dir / labels_file).string(), labels);
}

// The batch's per-problem losses at `params` (detached) and their gradients, through fresh leaves.
inline std::pair<at::Tensor, TensorList> loss_and_grads(const tasks::ProblemBatch& batch, const TensorList& params,
                                                        int64_t step) {
  TensorList leaves = fresh_leaves(params);
  const at::Tensor loss = batch.loss(leaves, step);
  return {loss.detach(), torch::autograd::grad({loss.sum()}, leaves)};
}

}  // namespace hamlet::test
