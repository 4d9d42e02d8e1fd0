#include "hamlet/meta/epoch_hooks.hpp"

#include <spdlog/spdlog.h>

#include "hamlet/meta/checkpoint.hpp"

namespace hamlet::meta {

TensorList clone_all(const TensorList& xs) {
  TensorList out;
  for (const auto& x : xs) out.push_back(x.detach().clone());
  return out;
}

void select_after_epoch(const learned::LearnedOptimizer& optimizer, const tasks::Task& task,
                        const MetaTrainOptions& options, EpochRecord& record, MetaTrainResult& result) {
  const auto scores = component_scores(optimizer, task, options.validation.problems, options.schedule.horizon,
                                       options.validation.seed, options.device);
  record.validation_score = combined_score(task, scores);
  if (scores.size() > 1) record.component_scores = scores;
  if (record.validation_score < result.best_score) {
    result.best_score = record.validation_score;
    result.best_epoch = record.epoch;
    result.best_weights = clone_all(optimizer.weights());
  }
}

void log_epoch(const EpochRecord& record, const MetaTrainResult& result) {
  std::string components;
  for (const double s : record.component_scores) components += (components.empty() ? " [" : ", ") + format_number(s);
  if (!components.empty()) components += "]";
  spdlog::debug("epoch {}: meta-loss {:.5g}, validation {:.5g}{} (best {:.5g} @ {}), |g| {:.3g}", record.epoch,
                record.train_meta_loss, record.validation_score, components, result.best_score, result.best_epoch,
                record.grad_norm);
}

void checkpoint_if_due(const learned::LearnedOptimizer& optimizer, const MetaTrainOptions& options, int64_t epoch,
                       const optim::OptimizerState& meta_state, const MetaTrainResult& result,
                       const std::string& config) {
  if (checkpoint_due(options, epoch)) write_checkpoint(optimizer, options, epoch, meta_state, result, config);
}

bool checkpoint_due(const MetaTrainOptions& options, int64_t epoch) {
  return epoch % options.checkpointing.every == 0 || epoch == options.schedule.epochs;
}

void write_checkpoint(const learned::LearnedOptimizer& optimizer, const MetaTrainOptions& options, int64_t epoch,
                      const optim::OptimizerState& meta_state, const MetaTrainResult& result,
                      const std::string& config) {
  if (options.checkpointing.path.empty()) return;
  Checkpoint c;
  c.epoch = epoch;
  c.weights = clone_all(optimizer.weights());
  c.best_weights = result.best_weights;
  c.meta_state = meta_state;
  c.progress = result;
  c.architecture = optimizer.architecture();
  c.config = config;
  save_checkpoint(options.checkpointing.path, c);
}

}  // namespace hamlet::meta
