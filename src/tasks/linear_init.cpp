#include "linear_init.hpp"

#include <ATen/ATen.h>

#include <cmath>

#include "hamlet/core/seed.hpp"

namespace hamlet::tasks::detail {

TensorList linear_stack_init(const std::vector<int64_t>& sizes, const std::vector<uint64_t>& seeds,
                             c10::Device device, c10::ScalarType dtype) {
  const std::size_t layers = sizes.size() - 1;
  std::vector<std::vector<at::Tensor>> per_tensor(2 * layers);
  const auto f64 = at::TensorOptions().dtype(at::kDouble);
  for (const uint64_t s : seeds) {
    at::Generator gen = make_generator(mix_seed(s, 0));
    for (std::size_t l = 0; l < layers; ++l) {
      const double bound = 1.0 / std::sqrt(static_cast<double>(sizes[l]));
      per_tensor[2 * l].push_back(at::rand({sizes[l + 1], sizes[l]}, gen, f64) * (2 * bound) - bound);
      per_tensor[2 * l + 1].push_back(at::rand({sizes[l + 1]}, gen, f64) * (2 * bound) - bound);
    }
  }
  TensorList params0;
  for (auto& list : per_tensor) params0.push_back(at::stack(list).to(device, dtype));
  return params0;
}

}  // namespace hamlet::tasks::detail
