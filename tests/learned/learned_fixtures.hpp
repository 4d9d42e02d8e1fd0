#pragma once
// Shared fixtures for the learned-optimizer tests (tests/learned, tests/interop): perturbed weights, a small
// optimizee problem, and a fused-kernel / tensor-path pair of one configuration for comparing the two paths.
#include <ATen/ATen.h>

#include <cstdint>
#include <string>

#include "hamlet/core/options.hpp"
#include "hamlet/core/seed.hpp"
#include "hamlet/core/tensor.hpp"
#include "hamlet/core/error.hpp"
#include "hamlet/learned/learned_optimizer.hpp"
#include "hamlet/learned/registry.hpp"

namespace hamlet::test {

// Every weight plus scale·N(0, 1) drawn from gen, in the weights' own dtype.
inline TensorList perturbed(const TensorList& weights, at::Generator& gen, double scale) {
  TensorList w;
  for (const auto& x : weights) w.push_back(x + scale * at::randn(x.sizes(), gen, x.options()));
  return w;
}

// Perturbs every weight (by 0.1·N(0, 1)) so that a loaded file is distinguishable from a fresh initialisation.
inline void perturb(learned::LearnedOptimizer& opt, uint64_t seed) {
  at::Generator gen = make_generator(seed);
  opt.set_weights(perturbed(opt.weights(), gen, 0.1));
}

// Same count, and each tensor of the same dtype and bitwise equal.
inline bool same_weights(const TensorList& a, const TensorList& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (a[i].scalar_type() != b[i].scalar_type() || !at::equal(a[i], b[i])) return false;
  }
  return true;
}

// Whether the registered learned optimizer `name` takes preprocess=true (the optimizers that read their own
// normalised features, mlp-lopt, phnn-features, phnn-lift, refuse it).
inline bool accepts_preprocess(const std::string& name) {
  try {
    learned::make_learned(name, {{"preprocess", "true"}});
    return true;
  } catch (const Error&) {
    return false;
  }
}

// Options of an optimizer whose weights a test round-trips: on preprocessed gradients, out_mul 0.01 (so that a
// loaded optimizer's learning rate shows the recorded options became its defaults), at `dtype`, seed 2.
inline OptionMap round_trip_options(const std::string& dtype) {
  return {{"preprocess", "true"}, {"out_mul", "0.01"}, {"dtype", dtype}, {"seed", "2"}};
}

// b problems of two parameters ([b, 4] and [b, 2, 3]) and their gradients, the second one small.
struct Problem {
  TensorList params, grads;
};

inline Problem problem(int64_t b, at::ScalarType dtype = at::kDouble) {
  at::Generator gen = make_generator(17);
  const auto o = at::TensorOptions().dtype(dtype);
  return {{at::randn({b, 4}, gen, o), at::randn({b, 2, 3}, gen, o)},
          {at::randn({b, 4}, gen, o), at::randn({b, 2, 3}, gen, o) * 1e-3}};
}

// A fused-kernel and a tensor-path optimizer of one configuration at `dtype` (Opt: Phnn or PhnnPaper), both holding
// the same weights: the initial ones plus 0.5·N(0, 1), away from the initialisation's small values so that tanh
// units saturate in places and every term matters. `params` are two parameters [2, 3, 4] and [2, last_dim]; the
// weights and then the parameters are drawn from `gen` (seeded with `seed`), which the test draws on further.
template <typename Opt>
struct FusedAndTensor {
  template <typename Options>
  FusedAndTensor(Options o, at::ScalarType dtype, uint64_t seed, int64_t last_dim)
      : fused(with_kernel(o, dtype, "fused")),
        tensor(with_kernel(o, dtype, "tensor")),
        gen(make_generator(seed)),
        weights(perturbed(fused.weights(), gen, 0.5)),
        opts(at::TensorOptions().dtype(dtype)),
        params{at::randn({2, 3, 4}, gen, opts), at::randn({2, last_dim}, gen, opts)} {
    fused.set_weights(weights);
    tensor.set_weights(weights);
  }

  Opt fused, tensor;
  at::Generator gen;
  TensorList weights;
  at::TensorOptions opts;
  TensorList params;

 private:
  template <typename Options>
  static Options with_kernel(Options o, at::ScalarType dtype, const std::string& kernel) {
    o.dtype = dtype == at::kDouble ? "float64" : "float32";
    o.kernel = kernel;
    return o;
  }
};

}  // namespace hamlet::test
