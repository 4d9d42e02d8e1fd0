#include "linear_init.hpp"

#include <ATen/ATen.h>

#include <cmath>

#include "hamlet/core/error.hpp"
#include "hamlet/core/seed.hpp"

namespace hamlet::tasks::detail {

double fan_in_bound(int64_t fan_in) { return 1.0 / std::sqrt(static_cast<double>(fan_in)); }

TensorList init_per_problem(const std::vector<TensorInit>& tensors, const std::vector<uint64_t>& seeds,
                            c10::Device device, c10::ScalarType dtype) {
  std::vector<std::vector<at::Tensor>> per_tensor(tensors.size());
  const auto f64 = at::TensorOptions().dtype(at::kDouble);
  for (const uint64_t s : seeds) {
    at::Generator gen = make_generator(mix_seed(s, 0));
    for (std::size_t t = 0; t < tensors.size(); ++t) {
      const TensorInit& init = tensors[t];
      per_tensor[t].push_back(init.bound > 0 ? at::rand(init.sizes, gen, f64) * (2 * init.bound) - init.bound
                                             : at::empty(init.sizes, f64).normal_(0.0, 1.0, gen));
    }
  }
  TensorList params0;
  for (auto& list : per_tensor) params0.push_back(at::stack(list).to(device, dtype));
  return params0;
}

std::vector<uint64_t> problem_seeds(Split split, uint64_t seed, int64_t first, int64_t count) {
  std::vector<uint64_t> seeds;
  for (int64_t i = first; i < first + count; ++i) seeds.push_back(problem_seed(split, seed, i));
  return seeds;
}

TensorList linear_stack_init(const std::vector<int64_t>& sizes, const std::vector<uint64_t>& seeds,
                             c10::Device device, c10::ScalarType dtype) {
  std::vector<TensorInit> tensors;
  for (std::size_t l = 0; l + 1 < sizes.size(); ++l) {
    tensors.push_back({{sizes[l + 1], sizes[l]}, fan_in_bound(sizes[l])});
    tensors.push_back({{sizes[l + 1]}, fan_in_bound(sizes[l])});
  }
  return init_per_problem(tensors, seeds, device, dtype);
}

at::Tensor linear_stack_forward(const std::string& owner, const TensorList& params, std::size_t expected,
                                const at::Tensor& x,
                                const std::function<at::Tensor(std::size_t layer, const at::Tensor& h)>& hidden) {
  HAMLET_CHECK(params.size() == expected, owner, ": expected ", expected, " parameter tensors, got ", params.size());
  at::Tensor h = x;
  const std::size_t layers = params.size() / 2;
  for (std::size_t l = 0; l < layers; ++l) {
    h = at::baddbmm(params[2 * l + 1].unsqueeze(1), h, params[2 * l].transpose(1, 2));
    if (l + 1 < layers) h = hidden(l, h);
  }
  return h;
}

std::vector<std::string> linear_stack_names(std::size_t layers) {
  std::vector<std::string> names;
  for (std::size_t l = 0; l < layers; ++l) {
    names.push_back("w" + std::to_string(l));
    names.push_back("b" + std::to_string(l));
  }
  return names;
}

}  // namespace hamlet::tasks::detail
