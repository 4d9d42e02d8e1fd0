#pragma once
// One epoch of meta-training assembled from its parts (meta_train.hpp lists them): for each of the epoch's
// episodes, the sampler starts it, the estimator advances it one truncation at a time, and every closed window
// goes through the meta-optimizer step. No validation, checkpoint or log: those are the epoch-end hooks
// (epoch_hooks.hpp). `hamlet benchmark --mode=meta-train` runs exactly this.
#include <cstdint>

#include "hamlet/parallel/communicator.hpp"
#include "hamlet/learned/learned_optimizer.hpp"
#include "hamlet/meta/gradient_estimator.hpp"
#include "hamlet/meta/meta_step.hpp"
#include "hamlet/meta/meta_train.hpp"
#include "hamlet/meta/trajectory.hpp"
#include "hamlet/tasks/task.hpp"

namespace hamlet::meta {

class EpochTrainer {
 public:
  // Validates `options`; the meta-optimizer state starts fresh for the optimizer's current weights. With a
  // communicator of more than one rank the estimator is wrapped in a DataParallelEstimator (data_parallel.hpp).
  EpochTrainer(learned::LearnedOptimizer& optimizer, const tasks::Task& task, const MetaTrainOptions& options,
               parallel::CommunicatorPtr communicator = nullptr);
  // Trains epoch `epoch` (1-based). Fills the record's training columns (meta-loss, gradient norm, counters; not
  // the validation score or wall time) and adds to the totals in `result` (meta_steps, skipped_steps,
  // undefined_steps, cut_trajectories, optimizee_steps, train_seconds).
  EpochRecord train_epoch(int64_t epoch, MetaTrainResult& result);
  MetaOptimizerStep& meta_step() { return meta_step_; }
  const GradientEstimator& estimator() const { return *estimator_; }

 private:
  learned::LearnedOptimizer& optimizer_;
  MetaTrainOptions options_;
  GradientEstimatorPtr estimator_;
  TrajectorySampler sampler_;
  MetaOptimizerStep meta_step_;
};

}  // namespace hamlet::meta
