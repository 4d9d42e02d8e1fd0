#pragma once
// Evaluation of an optimizer on N paired problems (docs/methods.md §4.5).
//
// Each run starts from the problem's θ0 with a fresh optimizer state and takes K updates. Logged per problem
// and step t = 0..K−1: the loss F(θ_t) before update t (on minibatch t for stochastic tasks), the global
// gradient norm ‖∇F(θ_t)‖, the update norm ‖θ_{t+1} − θ_t‖, and every diagnostic the optimizer reports
// (e.g. energy). The paper's table metric is the loss at the last logged step, F(θ_{K−1}); F(θ_K) after the last
// update is kept as `final_loss`. Problems are drawn as (task, split, seed, index), so every optimizer evaluated
// with the same options sees the same problems; `batch` problems run as one tensor program.
#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "hamlet/core/option_spec.hpp"
#include "hamlet/optim/optimizer.hpp"
#include "hamlet/tasks/task.hpp"

namespace hamlet::eval {

struct EvaluateOptions {
  int64_t steps = 100;     // K updates per run
  int64_t problems = 100;  // N paired problems
  int64_t batch = 0;       // problems per tensor program; 0 = the task's default_batch() (all N for quadratics),
                           // capped by the optimizer's max_batch_coordinates()
  uint64_t seed = 0;       // problem seed
  tasks::Split split = tasks::Split::kTest;
  std::string device = "cpu";
  std::string label;       // name in progress lines (default: optimizer name)
  bool progress = true;    // log a progress line (steps done, rate, ETA) every few seconds
  // spec(): steps, problems, batch, seed, split (device, label and progress are set by the caller; validate()
  // checks the device too).
  HAMLET_OPTIONS(EvaluateOptions);
};

struct Trajectory {
  at::Tensor loss;         // [N, K] float64
  at::Tensor final_loss;   // [N] float64, F(θ_K)
  at::Tensor grad_norm;    // [N, K]
  at::Tensor update_norm;  // [N, K]
  std::map<std::string, at::Tensor> diagnostics;  // [N, K] each
  double seconds = 0;      // wall time of the runs
};

Trajectory evaluate(const tasks::Task& task, const optim::Optimizer& optimizer, const EvaluateOptions& options);

// What evaluate() would hold in memory at its peak, estimated before it runs from one sampled problem (its
// parameters and the optimizer's state on it) and the task's data_bytes_per_problem(): the [N, K] curves and one
// chunk of problems at work. An estimate (within a small factor), for refusing runs that cannot fit.
struct MemoryEstimate {
  double curve_bytes = 0;        // float64 curves of N problems x K steps, with the copies made when joining chunks
  int64_t chunk = 0;             // problems run at once
  double per_problem_bytes = 0;  // parameters, gradients, optimizer state and task data of one problem at work
  double total() const { return curve_bytes + static_cast<double>(chunk) * per_problem_bytes; }
  std::string describe() const;  // "curves X GiB + N problems at once x Y KiB"
};
MemoryEstimate estimate_memory(const tasks::Task& task, const optim::Optimizer& optimizer,
                               const EvaluateOptions& options);

struct Summary {
  int64_t problems = 0, steps = 0;
  double final_mean = 0, final_se = 0, final_median = 0;  // loss at the last logged step F(θ_{K−1})
  double mean_over_steps = 0, mean_over_steps_se = 0;     // per-problem mean of the K logged losses
  int64_t non_finite = 0;                                 // problems with a non-finite logged loss
};
Summary summarize(const Trajectory& trajectory);

}  // namespace hamlet::eval
