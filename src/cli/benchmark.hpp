#pragma once
// Private to the cli module: the pieces of `hamlet benchmark` (other_commands.cpp) that live in benchmark_steps.cpp.
#include <functional>
#include <string>
#include <vector>

#include "commands.hpp"

namespace hamlet::cli {

// Every combination of the values of options written as comma lists ("hidden" -> "20,200" and "activation" ->
// "relu,tanh" give four maps); options without a comma keep their one value. Task option lists themselves use ':'.
std::vector<OptionMap> option_sweep(const OptionMap& options);

// What the machine does on the current thread count: streaming bandwidth (an in-place axpy over 4M float32,
// 12 bytes per element) and the float32 GEMM rate ([2048, 256] x [256, 256]), best of five after a warm-up; and on
// one thread the cost of one tanh of the fused kernels (learned/activation_rate.hpp).
struct MachineRates {
  double stream_gb_per_s = 0;
  double gemm_gflop_per_s = 0;
  double tanh_ns = 0;
};
MachineRates measure_machine_rates();

using OptimizerFactory = std::function<optim::OptimizerPtr(const std::string& name)>;

// --mode=step on one task: for each optimizer, update() alone on one problem (θ0 and its first gradient), `steps`
// updates per run, best of three runs; prints one Markdown row per optimizer (ns per coordinate, the memory floor
// = bytes an update must move ÷ the stream rate, the compute floor = the activations_per_coordinate() at the tanh
// cost plus the other flops_per_coordinate() at the GEMM rate, divided by the thread count for the activations) and,
// for float32 tasks, LibTorch's torch::optim::Adam on the same tensors.
struct StepTimings {
  int64_t coordinates = 0;            // of the one problem
  std::vector<double> ns_per_coordinate;  // in `names` order
};
StepTimings benchmark_steps(const tasks::Task& task, const std::vector<std::string>& names,
                                    const OptimizerFactory& make, const MachineRates& rates, int64_t steps);

}  // namespace hamlet::cli
