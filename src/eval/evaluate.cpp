#include "hamlet/eval/evaluate.hpp"

#include <torch/csrc/autograd/autograd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>

#include "hamlet/core/error.hpp"
#include "hamlet/core/parallel.hpp"
#include "hamlet/core/progress.hpp"
#include "hamlet/eval/statistics.hpp"

namespace hamlet::eval {

const OptionSpec<EvaluateOptions>& EvaluateOptions::spec() {
  using O = EvaluateOptions;
  static const auto s =
      OptionSpec<O>("evaluate")
          .add("problems", &O::problems, "number of paired problems N", checks::positive)
          .add("steps", &O::steps, "optimizer steps K per problem", checks::positive)
          .add("batch", &O::batch,
               "problems per tensor program (0 = the task's default: all for quadratics, ~40 for the MLP; fewer for "
               "learned optimizers, which cap the coordinates per program)",
               [](const std::string& field, int64_t batch) {
                 HAMLET_CHECK(batch >= 0, field, " must be >= 0 (0 = all problems at once), got ", batch);
               })
          .add("seed", &O::seed, "problem seed")
          .add_choice("split", &O::split, "problem pool: train | validation | test",
                      {{"train", tasks::Split::kTrain},
                       {"validation", tasks::Split::kValidation},
                       {"test", tasks::Split::kTest}})
          .rule([](const std::string& owner, const O& o) {
            try {
              (void)c10::Device(o.device);
            } catch (const c10::Error&) {
              throw Error(owner + ".device must be a torch device such as cpu or cuda:0, got '" + o.device + "'");
            }
          });
  return s;
}

namespace {

// Problems per tensor program: --batch, else the task's default, capped by the optimizer's coordinate budget.
int64_t chunk_size(const tasks::Task& task, const optim::Optimizer& optimizer, const EvaluateOptions& options) {
  const int64_t n = options.problems;
  int64_t preferred = options.batch > 0 ? options.batch : task.default_batch();
  if (options.batch == 0 && optimizer.max_batch_coordinates() > 0) {
    int64_t per_problem = 0;
    for (const auto& p : task.sample(options.split, options.seed, 0, 1, c10::Device(options.device))->initial_params()) {
      per_problem += p.numel();
    }
    const int64_t fit = std::max<int64_t>(1, optimizer.max_batch_coordinates() / std::max<int64_t>(1, per_problem));
    preferred = preferred > 0 ? std::min(preferred, fit) : fit;
  }
  return preferred > 0 ? std::min(preferred, n) : n;
}

// Σ_j (x_j − y_j)² over n values (y = nullptr: Σ x_j²) in double, eight independent partial sums so that the loop
// vectorises without reassociating anything: the result does not depend on the compiler or the thread count.
template <typename T>
double sum_sq_difference(const T* x, const T* y, int64_t n) {
  double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) {
    for (int l = 0; l < 8; ++l) {
      const double d = static_cast<double>(x[j + l]) - (y ? static_cast<double>(y[j + l]) : 0.0);
      acc[l] += d * d;
    }
  }
  for (; j < n; ++j) {
    const double d = static_cast<double>(x[j]) - (y ? static_cast<double>(y[j]) : 0.0);
    acc[0] += d * d;
  }
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

// The curves' per-problem norms ‖x‖ (ys empty) or ‖x − y‖, [B] float64, in one read pass over the tensors instead of
// the difference, square and sum temporaries of per_problem_norm: the per-step bookkeeping then costs a fraction of
// an update. CPU float32/float64 tensors of one dtype; anything else takes the tensor expressions.
at::Tensor curve_norm(const TensorList& xs, const TensorList& ys = {}) {
  const at::ScalarType dtype = xs.front().scalar_type();
  bool fused = dtype == at::kFloat || dtype == at::kDouble;
  for (std::size_t i = 0; i < xs.size() && fused; ++i) {
    fused = xs[i].device().is_cpu() && xs[i].scalar_type() == dtype && xs[i].dim() >= 1 &&
            (ys.empty() || (ys[i].device().is_cpu() && ys[i].scalar_type() == dtype && ys[i].sizes() == xs[i].sizes()));
  }
  if (!fused) {
    if (ys.empty()) return per_problem_norm(xs).to(at::kDouble);
    TensorList delta;
    for (std::size_t i = 0; i < xs.size(); ++i) delta.push_back(xs[i] - ys[i]);
    return per_problem_norm(delta).to(at::kDouble);
  }
  constexpr int64_t kChunk = 1 << 15;
  const int64_t batch = xs.front().size(0);
  std::vector<double> total(static_cast<std::size_t>(batch), 0.0);
  for (std::size_t i = 0; i < xs.size(); ++i) {
    const at::Tensor x = xs[i].reshape({batch, -1}).contiguous();
    const at::Tensor y = ys.empty() ? at::Tensor() : ys[i].reshape({batch, -1}).contiguous();
    const int64_t n = x.size(1);
    for (int64_t b = 0; b < batch; ++b) {
      std::vector<double> part(static_cast<std::size_t>(chunk_count(n, kChunk)), 0.0);
      AT_DISPATCH_FLOATING_TYPES(dtype, "curve_norm", [&] {
        const scalar_t* xb = x.data_ptr<scalar_t>() + b * n;
        const scalar_t* yb = y.defined() ? y.data_ptr<scalar_t>() + b * n : nullptr;
        for_each_chunk(n, kChunk, [&](int64_t c, int64_t begin, int64_t end) {
          part[static_cast<std::size_t>(c)] = sum_sq_difference(xb + begin, yb ? yb + begin : nullptr, end - begin);
        });
      });
      for (const double p : part) total[static_cast<std::size_t>(b)] += p;
    }
  }
  return at::tensor(total, at::TensorOptions().dtype(at::kDouble)).sqrt();
}

double bytes_of(const TensorList& xs) {
  double total = 0;
  for (const auto& x : xs) total += static_cast<double>(x.numel()) * static_cast<double>(x.element_size());
  return total;
}

std::string gib(double bytes) {
  char buf[64];
  if (bytes >= 1024.0 * 1024 * 1024) std::snprintf(buf, sizeof(buf), "%.3g GiB", bytes / (1024.0 * 1024 * 1024));
  else if (bytes >= 1024.0 * 1024) std::snprintf(buf, sizeof(buf), "%.3g MiB", bytes / (1024.0 * 1024));
  else std::snprintf(buf, sizeof(buf), "%.3g KiB", bytes / 1024.0);
  return buf;
}

}  // namespace

std::string MemoryEstimate::describe() const {
  return "curves " + gib(curve_bytes) + " + " + std::to_string(chunk) + " problems at once x " +
         gib(per_problem_bytes) + " each";
}

MemoryEstimate estimate_memory(const tasks::Task& task, const optim::Optimizer& optimizer,
                               const EvaluateOptions& options) {
  options.validate();
  MemoryEstimate e;
  // loss, gradient norm, update norm and up to two diagnostics; at::cat of the chunks copies them once more.
  constexpr double kCurves = 5, kJoinCopies = 2;
  e.curve_bytes = static_cast<double>(options.problems) * static_cast<double>(options.steps) * 8 * kCurves * kJoinCopies;
  e.chunk = chunk_size(task, optimizer, options);
  const auto one = task.sample(options.split, options.seed, 0, 1, c10::Device(options.device));
  const TensorList params = one->initial_params();
  const optim::OptimizerState state = optimizer.init(params);
  double state_bytes = 0;
  for (const auto& [name, slot] : state.slots) state_bytes += bytes_of(slot);
  // Parameters live as current, leaves, gradients, next and delta; the state as current and next.
  e.per_problem_bytes = 5 * bytes_of(params) + 2 * state_bytes + static_cast<double>(task.data_bytes_per_problem());
  return e;
}

Trajectory evaluate(const tasks::Task& task, const optim::Optimizer& optimizer, const EvaluateOptions& options) {
  options.validate();
  const c10::Device device(options.device);
  const int64_t n = options.problems, k = options.steps;
  const int64_t chunk = chunk_size(task, optimizer, options);
  Progress progress(options.label.empty() ? optimizer.name() : options.label, n * k, "problem-steps", 3.0,
                    options.progress);

  std::vector<at::Tensor> loss_chunks, final_chunks, grad_chunks, update_chunks;
  std::map<std::string, std::vector<at::Tensor>> diag_chunks;
  const auto start = std::chrono::steady_clock::now();
  for (int64_t first = 0; first < n; first += chunk) {
    const int64_t count = std::min(chunk, n - first);
    const auto batch = task.sample(options.split, options.seed, first, count, device);
    TensorList params = batch->initial_params();
    optim::OptimizerState state = optimizer.init(params);
    // Per-step values stay on the device and are copied back once per chunk.
    std::vector<at::Tensor> losses, grad_norms, update_norms;
    std::map<std::string, std::vector<at::Tensor>> diags;
    for (int64_t t = 0; t < k; ++t) {
      TensorList leaves = fresh_leaves(params);
      const at::Tensor loss = batch->loss(leaves, t);
      TensorList grads = torch::autograd::grad({loss.sum()}, leaves);
      const at::Tensor loss_value = loss.detach();
      optim::StepResult result;
      {
        at::NoGradGuard no_grad;
        result = optimizer.update(params, grads, loss_value, state);
      }
      TensorList next = detach_all(result.params);
      losses.push_back(loss_value);
      grad_norms.push_back(curve_norm(grads));
      update_norms.push_back(curve_norm(next, params));
      for (const auto& [name, value] : result.diagnostics) diags[name].push_back(value.detach().reshape({count}));
      params = std::move(next);
      state = std::move(result.state);
      progress.update(first * k + (t + 1) * count);
    }
    {
      at::NoGradGuard no_grad;
      final_chunks.push_back(batch->loss(params, k).detach().to(at::kCPU, at::kDouble));
    }
    const auto to_host = [](const std::vector<at::Tensor>& xs) {
      return at::stack(xs, 1).to(at::kCPU, at::kDouble);
    };
    loss_chunks.push_back(to_host(losses));
    grad_chunks.push_back(to_host(grad_norms));
    update_chunks.push_back(to_host(update_norms));
    for (const auto& [name, values] : diags) {
      HAMLET_CHECK(static_cast<int64_t>(values.size()) == k, optimizer.name(), ": diagnostic '", name,
                   "' was not reported on every step");
      diag_chunks[name].push_back(to_host(values));
    }
  }
  Trajectory out;
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  out.loss = at::cat(loss_chunks);
  out.final_loss = at::cat(final_chunks);
  out.grad_norm = at::cat(grad_chunks);
  out.update_norm = at::cat(update_chunks);
  for (const auto& [name, chunks] : diag_chunks) out.diagnostics[name] = at::cat(chunks);
  return out;
}

Summary summarize(const Trajectory& trajectory) {
  Summary s;
  s.problems = trajectory.loss.size(0);
  s.steps = trajectory.loss.size(1);
  const at::Tensor last = trajectory.loss.select(1, s.steps - 1);
  const MeanSe fin = mean_se(last);
  s.final_mean = fin.mean;
  s.final_se = fin.se;
  s.final_median = eval::median(last);
  const MeanSe over = mean_se(trajectory.loss.mean(1));
  s.mean_over_steps = over.mean;
  s.mean_over_steps_se = over.se;
  s.non_finite = trajectory.loss.isfinite().logical_not().any(1).sum().item<int64_t>();
  return s;
}

}  // namespace hamlet::eval
