#include "hamlet/meta/meta_train.hpp"

#include <spdlog/spdlog.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <limits>

#include "hamlet/core/error.hpp"
#include "hamlet/core/progress.hpp"
#include "hamlet/eval/evaluate.hpp"
#include "hamlet/io/h5.hpp"
#include "hamlet/meta/checkpoint.hpp"
#include "hamlet/meta/epoch_hooks.hpp"
#include "hamlet/meta/epoch_trainer.hpp"
#include "hamlet/meta/run_config.hpp"

namespace hamlet::meta {
namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
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
  HAMLET_CHECK(estimator == "bptt" || estimator == "es" || estimator == "pes",
               "meta_train.estimator must be bptt, es or pes, got '", estimator, "'");
  check_positive("meta_train.es.pairs", es_pairs);
  check_positive("meta_train.es.sigma", es_sigma);
  HAMLET_CHECK(estimator == "bptt" || (!second_derivatives && !recompute), "meta_train.estimator=", estimator,
               " runs forward passes only: second_derivatives and recompute apply to bptt");
  HAMLET_CHECK(schedule == "constant" || schedule == "log-uniform",
               "meta_train.schedule must be constant or log-uniform, got '", schedule, "'");
  if (schedule == "log-uniform") {
    check_positive("meta_train.schedule.min", schedule_min);
    HAMLET_CHECK(schedule_max > schedule_min, "meta_train.schedule.max must exceed schedule.min (", schedule_min,
                 "), got ", schedule_max);
  }
  HAMLET_CHECK(schedule_offset >= 0, "meta_train.schedule.offset must be >= 0, got ", schedule_offset);
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
          {"seed", std::to_string(seed)},
          {"estimator", estimator},
          {"es.pairs", std::to_string(es_pairs)},
          {"es.sigma", format_number(es_sigma)},
          {"schedule", schedule},
          {"schedule.min", std::to_string(schedule_min)},
          {"schedule.max", std::to_string(schedule_max)},
          {"schedule.offset", std::to_string(schedule_offset)}};
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
  const std::string config = format_run_config(resolved_config(task, optimizer, options));
  // Everything that can be refused is refused before the first trajectory.
  if (!options.checkpoint.empty()) {
    HAMLET_CHECK(!options.resume || std::filesystem::exists(options.checkpoint), options.checkpoint,
                 ": --resume given but the checkpoint does not exist");
    io::H5Writer probe(options.checkpoint);  // creates and removes a temporary file next to it
  }
  const auto start = std::chrono::steady_clock::now();

  optimizer.set_trainable(false);
  EpochTrainer trainer(optimizer, task, options);
  MetaTrainResult result;
  int64_t first_epoch = 1;
  if (options.resume) {
    Checkpoint c = load_checkpoint(options.checkpoint);
    HAMLET_CHECK(c.architecture == optimizer.architecture(), options.checkpoint, ": checkpoint is for '",
                 c.architecture, "', the optimizer is '", optimizer.architecture(), "'");
    check_resume_config(parse_run_config(c.config), parse_run_config(config), options.checkpoint);
    const TensorList current = optimizer.weights();
    optimizer.set_weights(like(c.weights, current));
    result = c.progress;
    result.best_weights = like(c.best_weights, current);
    optim::OptimizerState& meta_state = trainer.meta_step().state();
    meta_state = optim::OptimizerState();
    meta_state.step = c.meta_state.step;
    for (const auto& [name, list] : c.meta_state.slots) meta_state.slots[name] = like(list, current);
    for (const auto& [name, value] : c.meta_state.scalars) meta_state.scalars[name] = value;
    first_epoch = c.epoch + 1;
    spdlog::info("resuming meta-training from {} after epoch {}", options.checkpoint, c.epoch);
  } else {
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
    EpochRecord record = trainer.train_epoch(epoch, result);
    select_after_epoch(optimizer, task, options, record, result);
    record.seconds = seconds_since(epoch_start);
    result.curve.push_back(record);
    log_epoch(record, result);
    progress.update(epoch - first_epoch + 1);
    checkpoint_if_due(optimizer, options, epoch, trainer.meta_step().state(), result, config);
  }
  optimizer.set_weights(result.best_weights);
  optimizer.set_trainable(false);
  result.seconds = seconds_since(start);
  return result;
}

}  // namespace hamlet::meta
