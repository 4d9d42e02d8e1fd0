// `hamlet benchmark --mode=step`: what one optimizer update costs per coordinate, beside the memory and compute floors
// measured on the machine, and the task-option sweeps (`--task.hidden=20,200,1000`) both benchmark modes run.
#include <ATen/Parallel.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/optim/adam.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <limits>
#include <map>

#include "benchmark.hpp"
#include "hamlet/core/error.hpp"
#include "hamlet/learned/activation_rate.hpp"
#include "hamlet/tasks/registry.hpp"

namespace hamlet::cli {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Least of `repeats` timings of f() after one untimed call: the least disturbed run is the one that bounds the cost.
template <typename F>
double best_seconds(int repeats, const F& f) {
  f();
  double best = std::numeric_limits<double>::infinity();
  for (int i = 0; i < repeats; ++i) {
    const auto start = Clock::now();
    f();
    best = std::min(best, seconds_since(start));
  }
  return best;
}

// Floats per coordinate an update reads and writes at least: θ and g in, θ' out, every state value in and out.
double state_values_per_coordinate(const optim::OptimizerState& state, double coordinates) {
  double values = 0;
  for (const auto& [name, tensors] : state.slots) {
    for (const auto& t : tensors) values += static_cast<double>(t.numel());
  }
  return values / coordinates;
}

struct StepTiming {
  double ns_per_coordinate = 0;
  double state_values = 0;  // per coordinate
};

// update() alone, `steps` times in a row from θ0 with the same gradient (so every optimizer sees the same inputs),
// best of three runs after a warm-up; state and parameters are carried from step to step as evaluation does.
StepTiming time_updates(const optim::Optimizer& opt, const TensorList& theta0, const TensorList& grads,
                        const at::Tensor& loss, int64_t steps, double coordinates) {
  at::NoGradGuard no_grad;
  StepTiming timing;
  timing.state_values = state_values_per_coordinate(opt.init(theta0), coordinates);
  const double seconds = best_seconds(3, [&] {
    TensorList params = theta0;
    optim::OptimizerState state = opt.init(params);
    for (int64_t t = 0; t < steps; ++t) {
      optim::StepResult r = opt.update(params, grads, loss, state);
      params = std::move(r.params);
      state = std::move(r.state);
    }
  });
  timing.ns_per_coordinate = 1e9 * seconds / (static_cast<double>(steps) * coordinates);
  return timing;
}

// LibTorch's own Adam (torch::optim::Adam, in place, one ATen operation per term) on the same tensors: the speed a
// hand-designed step should reach.
double time_torch_adam(const TensorList& theta0, const TensorList& grads, int64_t steps, double coordinates) {
  std::vector<at::Tensor> params;
  for (std::size_t i = 0; i < theta0.size(); ++i) {
    at::Tensor p = theta0[i].detach().clone().requires_grad_(true);
    p.mutable_grad() = grads[i].detach().clone();
    params.push_back(p);
  }
  torch::optim::Adam adam(params, torch::optim::AdamOptions(1e-3));
  const double seconds = best_seconds(3, [&] {
    for (int64_t t = 0; t < steps; ++t) adam.step();
  });
  return 1e9 * seconds / (static_cast<double>(steps) * coordinates);
}

// Activations cost what the kernels' tanh costs, split over the threads as the kernels' chunks are; the rest of the
// flops run at best at the GEMM rate (measured on the same threads).
double compute_floor_ns(double flops, double activations, const MachineRates& rates) {
  const double threads = static_cast<double>(std::max(1, at::get_num_threads()));
  return (flops - activations) / rates.gemm_gflop_per_s + activations * rates.tanh_ns / threads;
}

std::string with_commas(int64_t n) {
  std::string digits = std::to_string(n), out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

}  // namespace

std::vector<OptionMap> option_sweep(const OptionMap& options) {
  std::vector<OptionMap> variants{{}};
  for (const auto& [key, value] : options) {
    const std::vector<std::string> values =
        value.find(',') == std::string::npos ? std::vector<std::string>{value} : split_list(value);
    HAMLET_CHECK(!values.empty(), "--task.", key, ": an empty list of values");
    std::vector<OptionMap> next;
    for (const auto& v : variants) {
      for (const auto& item : values) {
        OptionMap o = v;
        o[key] = item;
        next.push_back(std::move(o));
      }
    }
    variants = std::move(next);
  }
  return variants;
}

MachineRates measure_machine_rates() {
  MachineRates rates;
  at::NoGradGuard no_grad;
  // The stream: y ← y + a·x over 4M float32 (48 MiB moved per pass, more than the caches hold).
  constexpr int64_t kStream = int64_t{1} << 22;
  const at::Tensor x = at::rand({kStream}), y = at::rand({kStream});
  const double stream_s = best_seconds(5, [&] { y.add_(x, 1e-3); });
  rates.stream_gb_per_s = 12.0 * static_cast<double>(kStream) / stream_s / 1e9;
  // The flop rate: a float32 GEMM shaped like a coordinatewise network's layer, [2048, 256] x [256, 256].
  const at::Tensor a = at::rand({2048, 256}), b = at::rand({256, 256});
  const double gemm_s = best_seconds(5, [&] { (void)at::mm(a, b); });
  rates.gemm_gflop_per_s = 2.0 * 2048 * 256 * 256 / gemm_s / 1e9;
  rates.tanh_ns = learned::measure_tanh_ns();
  return rates;
}

StepTimings benchmark_steps(const tasks::Task& task, const std::vector<std::string>& names,
                                    const OptimizerFactory& make, const MachineRates& rates, int64_t steps) {
  const auto batch = task.sample(tasks::Split::kTest, 0, 0, 1, c10::Device(at::kCPU));
  const TensorList theta0 = batch->initial_params();
  TensorList leaves = fresh_leaves(theta0);
  const at::Tensor loss = batch->loss(leaves, 0);
  const TensorList grads = detach_all(torch::autograd::grad({loss.sum()}, leaves));
  double coordinates = 0;
  for (const auto& p : theta0) coordinates += static_cast<double>(p.numel());
  const double element = static_cast<double>(theta0.front().element_size());
  std::printf("task %s (%s): %s coordinates, one problem, %lld updates per run, %d thread(s)\n", task.name().c_str(),
              format_options(task.options()).c_str(), with_commas(static_cast<int64_t>(coordinates)).c_str(),
              static_cast<long long>(steps), at::get_num_threads());
  std::printf("| optimizer | ns per coordinate | x adam | state values per coordinate | memory floor (ns) | flops per "
              "coordinate | of them activations | compute floor (ns) | x the larger floor |\n"
              "|---|---|---|---|---|---|---|---|---|\n");
  StepTimings out;
  out.coordinates = static_cast<int64_t>(coordinates);
  double adam_ns = 0;
  for (const auto& name : names) {
    const optim::OptimizerPtr opt = make(name);
    const StepTiming t = time_updates(*opt, theta0, grads, loss.detach(), steps, coordinates);
    if (name == "adam") adam_ns = t.ns_per_coordinate;
    const double memory_floor = element * (3.0 + 2.0 * t.state_values) / rates.stream_gb_per_s;
    const double flops = opt->flops_per_coordinate();
    const double compute_floor = compute_floor_ns(flops, opt->activations_per_coordinate(), rates);
    char ratio[32] = "", flop_text[32] = "not stated", activation_text[32] = "", compute_text[32] = "";
    if (adam_ns > 0) std::snprintf(ratio, sizeof ratio, "%.2f", t.ns_per_coordinate / adam_ns);
    if (flops > 0) {
      std::snprintf(flop_text, sizeof flop_text, "%.0f", flops);
      std::snprintf(activation_text, sizeof activation_text, "%.0f", opt->activations_per_coordinate());
      std::snprintf(compute_text, sizeof compute_text, "%.2f", compute_floor);
    }
    std::printf("| %s | %.2f | %s | %.2f | %.2f | %s | %s | %s | %.1f |\n", name.c_str(), t.ns_per_coordinate, ratio,
                t.state_values, memory_floor, flop_text, activation_text, compute_text,
                t.ns_per_coordinate / std::max(memory_floor, compute_floor));
    std::fflush(stdout);
    out.ns_per_coordinate.push_back(t.ns_per_coordinate);
  }
  if (theta0.front().scalar_type() == at::kFloat) {
    const double ns = time_torch_adam(theta0, grads, steps, coordinates);
    std::printf("| torch::optim::Adam (LibTorch, in place; reference) | %.2f | %s | 2.00 | %.2f | | | | |\n", ns,
                adam_ns > 0 ? std::to_string(ns / adam_ns).substr(0, 4).c_str() : "",
                element * 7.0 / rates.stream_gb_per_s);
  }
  return out;
}

}  // namespace hamlet::cli
