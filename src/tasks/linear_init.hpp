#pragma once
// Private to the tasks module: how the tasks draw their problems' initial parameters (mlp, cnn, tabular, charlm),
// and the stack of Linear layers that mlp and tabular share.
#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "hamlet/core/tensor.hpp"
#include "hamlet/tasks/task.hpp"

namespace hamlet::tasks::detail {

// One parameter tensor of a problem: its shape, and its distribution: U(−bound, bound) for bound > 0, N(0, 1) for
// bound = 0 (an embedding).
struct TensorInit {
  std::vector<int64_t> sizes;
  double bound = 0;
};
// LibTorch's Linear / Conv2d / GRU default bound for weights and biases alike (kaiming_uniform with a = √5 reduces
// to it): 1/√fan_in.
double fan_in_bound(int64_t fan_in);

// The initial parameters of the problems with these seeds: each problem draws `tensors` in order from
// make_generator(mix_seed(seed, 0)), in float64 so that a problem does not depend on the dtype or on the batch it is
// drawn in. Returns one [B, sizes...] tensor per entry of `tensors`, in `dtype` on `device`.
TensorList init_per_problem(const std::vector<TensorInit>& tensors, const std::vector<uint64_t>& seeds,
                            c10::Device device, c10::ScalarType dtype);

// The seeds of problems first, ..., first + count − 1 of a split (problem_seed).
std::vector<uint64_t> problem_seeds(Split split, uint64_t seed, int64_t first, int64_t count);

// A stack of Linear layers sizes[0] → sizes[1] → … as LibTorch's nn::Linear initialises them (init_per_problem):
// w0 [B, sizes[1], sizes[0]], b0 [B, sizes[1]], w1, b1, …
TensorList linear_stack_init(const std::vector<int64_t>& sizes, const std::vector<uint64_t>& seeds,
                             c10::Device device, c10::ScalarType dtype);

// Runs such a stack on x [B, M, sizes[0]]: h ← h·w_lᵀ + b_l per layer (a baddbmm), and hidden(l, h) after every
// layer but the last. Returns the last layer's output [B, M, sizes.back()]. `owner` names the task when `params`
// does not hold `expected` tensors.
at::Tensor linear_stack_forward(const std::string& owner, const TensorList& params, std::size_t expected,
                                const at::Tensor& x,
                                const std::function<at::Tensor(std::size_t layer, const at::Tensor& h)>& hidden);

// The parameter names of such a stack of `layers` layers: w0, b0, w1, b1, ...
std::vector<std::string> linear_stack_names(std::size_t layers);

}  // namespace hamlet::tasks::detail
