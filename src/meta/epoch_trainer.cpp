#include "hamlet/meta/epoch_trainer.hpp"

#include <spdlog/spdlog.h>

#include <chrono>
#include <cmath>

#include "hamlet/core/error.hpp"
#include "hamlet/meta/data_parallel.hpp"

namespace hamlet::meta {
namespace {

ProblemShare problem_share(const GradientEstimator& estimator, const parallel::DistributedOptions& parallel) {
  if (estimator.rank_split() != RankSplit::kProblems) return {};
  return {parallel.rank, parallel.world_size};
}

}  // namespace

EpochTrainer::EpochTrainer(learned::LearnedOptimizer& optimizer, const tasks::Task& task,
                           const MetaTrainOptions& options, parallel::CommunicatorPtr communicator)
    : optimizer_(optimizer),
      options_(options),
      estimator_(make_estimator(options)),
      sampler_(task, options.schedule, problem_share(*estimator_, options.parallel), options.device),
      meta_step_(options.meta_step.lr, options.meta_step.clip) {
  const int64_t world = communicator ? communicator->world_size() : 1;
  const parallel::DistributedOptions& p = options.parallel;
  HAMLET_CHECK(world == p.world_size && (!communicator || communicator->rank() == p.rank),
               "meta-training options say rank ", p.rank, " of ", p.world_size, ", the communicator rank ",
               communicator ? communicator->rank() : 0, " of ", world);
  if (world > 1) {
    estimator_ = std::make_unique<DataParallelEstimator>(std::move(estimator_), std::move(communicator));
  }
  meta_step_.init(optimizer.weights());
}

EpochRecord EpochTrainer::train_epoch(int64_t epoch, MetaTrainResult& result) {
  const auto start = std::chrono::steady_clock::now();
  EpochRecord record;
  record.epoch = epoch;
  int64_t steps = 0;
  double loss_sum = 0, norm_sum = 0;
  optimizer_.set_trainable(true);
  for (int64_t traj = 0; traj < options_.schedule.trajectories; ++traj) {
    estimator_->start(sampler_.episode(epoch, traj), optimizer_);
    bool cut = false;
    while (!estimator_->finished()) {
      const MetaGradient g = estimator_->advance(optimizer_);
      result.optimizee_steps += g.optimizee_steps;
      cut = cut || g.cut;
      if (!g.window) continue;
      const MetaStepOutcome s = meta_step_.apply(optimizer_, g);
      switch (s.kind) {
        case MetaStepOutcome::Kind::kTaken:
          ++result.meta_steps;
          loss_sum += s.meta_loss;
          norm_sum += s.grad_norm;
          ++steps;
          break;
        case MetaStepOutcome::Kind::kNonFinite:
          ++record.skipped_steps;
          ++result.skipped_steps;
          spdlog::warn("epoch {}: non-finite meta-loss or meta-gradient (loss {}, norm {}); step skipped", epoch,
                       s.loss, s.grad_norm);
          break;
        case MetaStepOutcome::Kind::kUndefined:
          ++record.undefined_steps;
          ++result.undefined_steps;
          spdlog::debug("epoch {}: window meta-gradient undefined for every weight; step skipped", epoch);
          break;
      }
    }
    if (cut) {
      ++record.cut_trajectories;
      ++result.cut_trajectories;
      spdlog::warn("epoch {}: trajectory {} cut, loss exceeded {} x its start", epoch, traj, options_.schedule.explode_factor);
    }
  }
  result.train_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  optimizer_.set_trainable(false);
  record.train_meta_loss = steps > 0 ? loss_sum / static_cast<double>(steps) : NAN;
  record.grad_norm = steps > 0 ? norm_sum / static_cast<double>(steps) : NAN;
  return record;
}

}  // namespace hamlet::meta
