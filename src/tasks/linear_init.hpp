#pragma once
// Private to the tasks module: the initial weights of the fully connected tasks (mlp, tabular).
#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

#include <cstdint>
#include <vector>

#include "hamlet/core/tensor.hpp"

namespace hamlet::tasks::detail {

// A stack of Linear layers sizes[0] → sizes[1] → … for each problem seed, as LibTorch's nn::Linear initialises them
// (kaiming_uniform with a = √5 reduces to U(−1/√fan_in, 1/√fan_in) for weights and biases alike), drawn in float64
// from mix_seed(seed, 0) so that a problem does not depend on the dtype. Returns w0 [B, sizes[1], sizes[0]], b0
// [B, sizes[1]], w1, b1, … in `dtype` on `device`.
TensorList linear_stack_init(const std::vector<int64_t>& sizes, const std::vector<uint64_t>& seeds,
                             c10::Device device, c10::ScalarType dtype);

}  // namespace hamlet::tasks::detail
