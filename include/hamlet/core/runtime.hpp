#pragma once
// Process-wide runtime settings.
#include <string>

namespace hamlet {

// Keeps large freed blocks in the heap instead of returning them to the OS. Batched MLP steps allocate tens of
// megabytes per step (gathered minibatches of B problems); with glibc's defaults every such block is a fresh
// mmap whose pages fault in again, which more than doubled the wall time of an MNIST evaluation (measured with Adam
// for 100 problems x 50 steps: 9.1 s -> 3.8 s). Call once at program start; a no-op where glibc's mallopt is unavailable.
void tune_allocator();

// OpenBLAS kernels for CPUs that Debian's OpenBLAS (0.3.21, built for every x86 core and choosing one at load time
// from the CPU's family and model) does not know. On such a CPU it falls back to its "Prescott" SSE3 kernels: on
// an Intel Xeon of model 207 (Emerald Rapids) with AVX-512, one core, sgemm ran at 15-34 GFLOP/s with them against
// 91-170 GFLOP/s with the SkylakeX kernels (the LSTM's [15,910 x 22] x [22 x 80] cell GEMM: 3.7 vs 0.61 ms). The
// core can only be chosen before OpenBLAS loads, through OPENBLAS_CORETYPE.
//
// blas_core_override(): the OPENBLAS_CORETYPE this process should run with, or "" when OpenBLAS is not loaded,
// the environment already sets OPENBLAS_CORETYPE, or OpenBLAS did not fall back to Prescott. The choice: SkylakeX
// where the CPU has AVX-512 F/CD/BW/DQ/VL, Haswell where it has AVX2 and FMA, else none.
std::string blas_core_override();
// When blas_core_override() names a core: sets OPENBLAS_CORETYPE to it and re-executes this program with the same
// arguments (execv of /proc/self/exe; same pid), so that OpenBLAS loads again with that core. Call first thing in
// main with main's argv. Returns when there is nothing to do, or when the re-execution failed (then nothing
// changed). HAMLET_BLAS_CORE=keep turns it off.
void use_best_blas_kernels(char** argv);
// Bytes this process can still allocate: the least of the machine's MemAvailable (/proc/meminfo), what the
// cgroup's memory.max leaves above memory.current, and what RLIMIT_AS (ulimit -v) leaves above the process's
// virtual size. Used to refuse runs that cannot fit before they allocate (a bad_alloc, or a crash inside torch's
// allocation-failure path, otherwise). Infinity when none of these can be read.
double available_memory_bytes();
// "MemAvailable", "the cgroup's memory.max" or "ulimit -v": which of the three bounds available_memory_bytes().
std::string available_memory_source();

// The OpenBLAS core in use ("Prescott", "SkylakeX", ...), or "" without OpenBLAS; recorded by `hamlet version`.
std::string blas_core();

}  // namespace hamlet
