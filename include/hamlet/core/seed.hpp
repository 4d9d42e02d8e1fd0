#pragma once
// Deterministic seeding. Every source of randomness in hamlet (problem sampling, initialisation, data order,
// optimizer noise) draws from a generator whose seed is derived from a user seed with mix_seed, so that problem
// i of (task, split, seed) is the same for every optimizer and every batch size.
#include <ATen/core/Generator.h>

#include <cstdint>
#include <initializer_list>

namespace hamlet {

// SplitMix64 finaliser of (a, b): a well-mixed 64-bit seed for a derived stream.
uint64_t mix_seed(uint64_t a, uint64_t b);
// Folds several values: mix_seed(mix_seed(mix_seed(v0, v1), v2), ...).
uint64_t mix_seeds(std::initializer_list<uint64_t> values);
// A CPU generator (Philox/MT as LibTorch provides) seeded with `seed`.
at::Generator make_generator(uint64_t seed);

}  // namespace hamlet
