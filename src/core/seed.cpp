#include "hamlet/core/seed.hpp"

#include <ATen/CPUGeneratorImpl.h>

namespace hamlet {

uint64_t mix_seed(uint64_t a, uint64_t b) {
  // SplitMix64 applied to a combination of both inputs; constants from Steele, Lea & Flood (2014).
  uint64_t z = a * 0x9E3779B97F4A7C15ULL + b + 0x632BE59BD9B4E019ULL;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

uint64_t mix_seeds(std::initializer_list<uint64_t> values) {
  uint64_t acc = 0x5EED5EED5EED5EEDULL;
  for (uint64_t v : values) acc = mix_seed(acc, v);
  return acc;
}

at::Generator make_generator(uint64_t seed) { return at::make_generator<at::CPUGeneratorImpl>(seed); }

}  // namespace hamlet
