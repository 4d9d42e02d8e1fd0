#pragma once
// What meta_train() does after each training epoch, in this order (meta_train.hpp):
//   1. select_after_epoch: scores the frozen optimizer on validation problems (§4.4 score) and keeps the
//      weights if they beat the best so far;
//   2. the record's wall time, the curve row and the debug log line (log_epoch);
//   3. checkpoint_if_due: an atomic checkpoint every `checkpoint_every` epochs and after the last one.
#include <cstdint>
#include <string>

#include "hamlet/learned/learned_optimizer.hpp"
#include "hamlet/meta/meta_train.hpp"
#include "hamlet/optim/optimizer.hpp"
#include "hamlet/tasks/task.hpp"

namespace hamlet::meta {

// Sets record.validation_score; updates result.best_score / best_epoch / best_weights when it improves.
void select_after_epoch(const learned::LearnedOptimizer& optimizer, const tasks::Task& task,
                        const MetaTrainOptions& options, EpochRecord& record, MetaTrainResult& result);

void log_epoch(const EpochRecord& record, const MetaTrainResult& result);

// Writes options.checkpoint (if set) after `epoch`; `config` is the resolved configuration (run_config.hpp).
void write_checkpoint(const learned::LearnedOptimizer& optimizer, const MetaTrainOptions& options, int64_t epoch,
                      const optim::OptimizerState& meta_state, const MetaTrainResult& result, const std::string& config);
// Whether `epoch` is due for a checkpoint: every `checkpoint_every` epochs and after the last one.
bool checkpoint_due(const MetaTrainOptions& options, int64_t epoch);
// write_checkpoint when checkpoint_due.
void checkpoint_if_due(const learned::LearnedOptimizer& optimizer, const MetaTrainOptions& options, int64_t epoch,
                       const optim::OptimizerState& meta_state, const MetaTrainResult& result,
                       const std::string& config);

// Detached copies (the selected weights must not alias the live ones).
TensorList clone_all(const TensorList& xs);

}  // namespace hamlet::meta
