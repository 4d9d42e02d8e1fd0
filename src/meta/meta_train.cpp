#include "hamlet/meta/meta_train.hpp"

#include <spdlog/spdlog.h>
#include <torch/csrc/autograd/autograd.h>

#include <chrono>
#include <cmath>
#include <filesystem>

#include "hamlet/core/error.hpp"
#include "hamlet/core/progress.hpp"
#include "hamlet/eval/evaluate.hpp"
#include "hamlet/meta/checkpoint.hpp"
#include "hamlet/meta/recompute.hpp"
#include "hamlet/optim/registry.hpp"

namespace hamlet::meta {
namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

optim::OptimizerState detach_state(const optim::OptimizerState& state) {
  optim::OptimizerState out;
  out.step = state.step;
  for (const auto& [name, list] : state.slots) out.slots[name] = detach_all(list);
  for (const auto& [name, value] : state.scalars) out.scalars[name] = value.detach();
  return out;
}

TensorList clone_all(const TensorList& xs) {
  TensorList out;
  for (const auto& x : xs) out.push_back(x.detach().clone());
  return out;
}

// Casts checkpoint tensors (float64 on the CPU) back to the dtype and device of the live weights.
TensorList like(const TensorList& values, const TensorList& reference) {
  HAMLET_CHECK(values.size() == reference.size(), "checkpoint holds ", values.size(), " weight tensors, the optimizer ",
               reference.size());
  TensorList out;
  for (std::size_t i = 0; i < values.size(); ++i) {
    HAMLET_CHECK(values[i].sizes() == reference[i].sizes(), "checkpoint weight ", i, " has shape ", values[i].sizes(),
                 ", the optimizer ", reference[i].sizes());
    out.push_back(values[i].to(reference[i].device(), reference[i].scalar_type()));
  }
  return out;
}

// Everything one meta-step needs to know about the window it closes.
struct MetaStep {
  bool taken = false;
  double meta_loss = 0, grad_norm = 0;
};

}  // namespace

void MetaTrainOptions::validate() const {
  check_positive("meta_train.epochs", epochs);
  check_positive("meta_train.trajectories", trajectories);
  check_positive("meta_train.horizon", horizon);
  check_positive("meta_train.unroll", unroll);
  check_positive("meta_train.batch", batch);
  check_positive("meta_train.meta_lr", meta_lr);
  check_non_negative("meta_train.clip", clip);
  HAMLET_CHECK(window_loss == "optml" || window_loss == "dm", "meta_train.window_loss must be optml or dm, got '",
               window_loss, "'");
  check_non_negative("meta_train.explode_factor", explode_factor);
  check_positive("meta_train.validation_problems", validation_problems);
  check_positive("meta_train.checkpoint_every", checkpoint_every);
  HAMLET_CHECK(!resume || !checkpoint.empty(), "meta_train.resume needs a checkpoint path");
}

OptionMap MetaTrainOptions::to_map() const {
  return {{"epochs", std::to_string(epochs)},
          {"trajectories", std::to_string(trajectories)},
          {"horizon", std::to_string(horizon)},
          {"unroll", std::to_string(unroll)},
          {"batch", std::to_string(batch)},
          {"meta_lr", format_number(meta_lr)},
          {"clip", format_number(clip)},
          {"second_derivatives", second_derivatives ? "true" : "false"},
          {"recompute", recompute ? "true" : "false"},
          {"window_loss", window_loss},
          {"train_tail", train_tail ? "true" : "false"},
          {"explode_factor", format_number(explode_factor)},
          {"validation_problems", std::to_string(validation_problems)},
          {"validation_seed", std::to_string(validation_seed)},
          {"seed", std::to_string(seed)}};
}

double validation_score(const learned::LearnedOptimizer& optimizer, const tasks::Task& task, int64_t problems,
                        int64_t steps, uint64_t seed, const std::string& device) {
  eval::EvaluateOptions o;
  o.problems = problems;
  o.steps = steps;
  o.seed = seed;
  o.split = tasks::Split::kValidation;
  o.device = device;
  o.progress = false;
  const auto tr = eval::evaluate(task, optimizer, o);
  const double score = tr.loss.mean().item<double>();
  return std::isfinite(score) ? score : std::numeric_limits<double>::infinity();
}

MetaTrainResult meta_train(learned::LearnedOptimizer& optimizer, const tasks::Task& task,
                           const MetaTrainOptions& options) {
  options.validate();
  const c10::Device device(options.device);
  const auto meta_optimizer = optim::make_optimizer("adam", {{"lr", format_number(options.meta_lr)}});
  const auto start = std::chrono::steady_clock::now();

  optimizer.set_trainable(false);
  MetaTrainResult result;
  optim::OptimizerState meta_state;
  int64_t first_epoch = 1;
  const bool resuming = options.resume && std::filesystem::exists(options.checkpoint);
  if (resuming) {
    Checkpoint c = load_checkpoint(options.checkpoint);
    HAMLET_CHECK(c.architecture == optimizer.architecture(), options.checkpoint, ": checkpoint is for '",
                 c.architecture, "', the optimizer is '", optimizer.architecture(), "'");
    const TensorList current = optimizer.weights();
    optimizer.set_weights(like(c.weights, current));
    result = c.progress;
    result.best_weights = like(c.best_weights, current);
    meta_state.step = c.meta_state.step;
    for (const auto& [name, list] : c.meta_state.slots) meta_state.slots[name] = like(list, current);
    for (const auto& [name, value] : c.meta_state.scalars) meta_state.scalars[name] = value;
    first_epoch = c.epoch + 1;
    spdlog::info("resuming meta-training from {} after epoch {}", options.checkpoint, c.epoch);
  } else {
    meta_state = meta_optimizer->init(optimizer.weights());
    result.initial_score = validation_score(optimizer, task, options.validation_problems, options.horizon,
                                            options.validation_seed, options.device);
    result.best_score = result.initial_score;
    result.best_weights = clone_all(optimizer.weights());
    if (options.progress) {
      spdlog::info("{}: validation score of the initialisation {:.5g}", optimizer.name(), result.initial_score);
    }
  }

  Progress progress(optimizer.name() + " meta-training", options.epochs, "epochs", 3.0, options.progress);
  for (int64_t epoch = first_epoch; epoch <= options.epochs; ++epoch) {
    const auto epoch_start = std::chrono::steady_clock::now();
    EpochRecord record;
    record.epoch = epoch;
    int64_t steps_in_epoch = 0;
    double loss_sum = 0, norm_sum = 0;
    optimizer.set_trainable(true);

    // Closes a window: back-propagates the accumulated meta-loss into φ and takes one meta-Adam step.
    auto meta_step = [&](const at::Tensor& acc, int64_t window_terms) {
      MetaStep s;
      const TensorList weights = optimizer.weights();
      TensorList grads = torch::autograd::grad({acc}, weights, /*grad_outputs=*/{}, /*retain_graph=*/false,
                                               /*create_graph=*/false, /*allow_unused=*/true);
      for (std::size_t i = 0; i < grads.size(); ++i) {
        if (!grads[i].defined()) grads[i] = at::zeros_like(weights[i]);
      }
      const double loss_value = acc.item<double>();
      double sq = 0;
      for (const auto& g : grads) sq += g.to(at::kDouble).pow(2).sum().item<double>();
      s.grad_norm = std::sqrt(sq);
      if (!std::isfinite(loss_value) || !std::isfinite(s.grad_norm)) {
        ++record.skipped_steps;
        ++result.skipped_steps;
        spdlog::warn("epoch {}: non-finite meta-loss or meta-gradient (loss {}, norm {}); step skipped", epoch,
                     loss_value, s.grad_norm);
        return s;
      }
      if (options.clip > 0 && s.grad_norm > options.clip) {
        const double scale = options.clip / s.grad_norm;
        for (auto& g : grads) g = g * scale;
      }
      optim::StepResult r;
      {
        at::NoGradGuard no_grad;
        r = meta_optimizer->update(detach_all(weights), grads, at::Tensor(), meta_state);
      }
      meta_state = std::move(r.state);
      optimizer.set_weights(r.params);
      optimizer.set_trainable(true);
      s.taken = true;
      s.meta_loss = loss_value / static_cast<double>(window_terms);
      ++result.meta_steps;
      return s;
    };

    for (int64_t traj = 0; traj < options.trajectories; ++traj) {
      const int64_t first = ((epoch - 1) * options.trajectories + traj) * options.batch;
      const auto batch = task.sample(tasks::Split::kTrain, options.seed, first, options.batch, device);
      TensorList params = batch->initial_params();
      optim::OptimizerState state = optimizer.init(params);
      at::Tensor acc;
      int64_t terms = 0;
      double start_loss = 0;
      bool cut = false;
      for (int64_t t = 0; t < options.horizon; ++t) {
        TensorList theta = params;
        for (auto& p : theta) {
          if (!p.requires_grad()) p = p.detach().requires_grad_(true);
        }
        const at::Tensor f = batch->loss(theta, t);
        const double mean_f = f.detach().mean().item<double>();
        if (t == 0) start_loss = mean_f;
        if (options.explode_factor > 0 && (!std::isfinite(mean_f) || mean_f > options.explode_factor * start_loss)) {
          cut = true;
          break;
        }
        acc = acc.defined() ? acc + f.mean() : f.mean();
        ++terms;
        TensorList g = torch::autograd::grad({f.sum()}, theta, {}, /*retain_graph=*/true,
                                             /*create_graph=*/options.second_derivatives);
        if (!options.second_derivatives) g = detach_all(g);
        optim::StepResult r = options.recompute ? recomputed_update(optimizer, theta, g, f.detach(), state)
                                                : optimizer.update(theta, g, f.detach(), state);
        result.optimizee_steps += options.batch;
        params = std::move(r.params);
        state = std::move(r.state);
        const bool window_end = (t + 1) % options.unroll == 0;
        const bool tail = options.train_tail && t + 1 == options.horizon && !window_end;
        if (window_end || tail) {
          if (options.window_loss == "dm") {
            acc = acc + batch->loss(params, t + 1).mean();
            ++terms;
          }
          const MetaStep s = meta_step(acc, terms);
          if (s.taken) {
            loss_sum += s.meta_loss;
            norm_sum += s.grad_norm;
            ++steps_in_epoch;
          }
          // Truncation: the next window starts from new leaves with the same values.
          params = detach_all(params);
          state = detach_state(state);
          acc = at::Tensor();
          terms = 0;
        }
      }
      if (cut) {
        ++record.cut_trajectories;
        ++result.cut_trajectories;
        spdlog::warn("epoch {}: trajectory {} cut, loss exceeded {} x its start", epoch, traj, options.explode_factor);
      }
    }

    result.train_seconds += seconds_since(epoch_start);
    optimizer.set_trainable(false);
    record.train_meta_loss = steps_in_epoch > 0 ? loss_sum / static_cast<double>(steps_in_epoch) : NAN;
    record.grad_norm = steps_in_epoch > 0 ? norm_sum / static_cast<double>(steps_in_epoch) : NAN;
    record.validation_score = validation_score(optimizer, task, options.validation_problems, options.horizon,
                                               options.validation_seed, options.device);
    if (record.validation_score < result.best_score) {
      result.best_score = record.validation_score;
      result.best_epoch = epoch;
      result.best_weights = clone_all(optimizer.weights());
    }
    record.seconds = seconds_since(epoch_start);
    result.curve.push_back(record);
    spdlog::debug("epoch {}: meta-loss {:.5g}, validation {:.5g} (best {:.5g} @ {}), |g| {:.3g}", epoch,
                  record.train_meta_loss, record.validation_score, result.best_score, result.best_epoch,
                  record.grad_norm);
    progress.update(epoch - first_epoch + 1);

    if (!options.checkpoint.empty() && (epoch % options.checkpoint_every == 0 || epoch == options.epochs)) {
      Checkpoint c;
      c.epoch = epoch;
      c.weights = clone_all(optimizer.weights());
      c.best_weights = result.best_weights;
      c.meta_state = meta_state;
      c.progress = result;
      c.architecture = optimizer.architecture();
      c.config = format_options(options.to_map());
      save_checkpoint(options.checkpoint, c);
    }
  }
  optimizer.set_weights(result.best_weights);
  optimizer.set_trainable(false);
  result.seconds = seconds_since(start);
  return result;
}

}  // namespace hamlet::meta
