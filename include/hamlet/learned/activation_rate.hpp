#pragma once
// What one activation costs on this machine, for the compute floor of `hamlet benchmark --mode=step`
// (docs/performance.md, "Steps at model scale").
//
// The learned optimizers' networks evaluate tanh, σ, exp or softplus per hidden unit and coordinate. With a polynomial
// exp (kernel_math.hpp) each is about twenty vector operations, so a network with 64 tanh per coordinate is bounded by
// its activations well before its multiply-adds reach the GEMM rate. Optimizer::activations_per_coordinate() counts
// them; this rate prices them.
namespace hamlet::learned {

// Nanoseconds per float32 value of the fused kernels' tanh (2σ(2x) − 1 with kernel_math.hpp's exp, the formula of
// fast_tanh.hpp, on 16 lanes as phnn's networks evaluate it) on a buffer that stays in the L1 cache, on the calling thread, compiled for the widest vector ISA
// the CPU has (AVX-512, AVX2 or SSE2); the least of `repeats` timings after a warm-up.
double measure_tanh_ns(int repeats = 5);

}  // namespace hamlet::learned
