#pragma once
// The fully resolved configuration of a meta-training run, stored in its checkpoint and compared on resume.
//
// Keys, in this order: task, task.KEY for every resolved task option (alphabetical); optimizer (registry name),
// optimizer.KEY for every resolved optimizer option (alphabetical); then every meta-training option of
// MetaTrainOptions::to_map() in alphabetical order (batch, clip, epochs, es.pairs, es.sigma, estimator, ...,
// schedule, schedule.max, schedule.min, schedule.offset, ..., window_loss). Stored as "key=value" lines.
// Output locations, checkpoint_every, device, time_limit and progress are not part of it.
//
// Resume rule: every key must be equal, except
//   epochs            may grow (a smaller value than the checkpoint's run is an error);
//   optimizer.seed    the initialisation seed: the weights come from the checkpoint, so it cannot matter.
//   task.data_source, task.data_dir   where the data were read from (a checkout elsewhere reads the same files;
//                     what they hold shows in the dataset's other keys).
// The error names the first differing key (in the order above) with both values. A checkpoint without a resolved
// configuration (older hamlet: only "k=v, k=v" meta-training options) cannot be resumed.
#include <string>
#include <utility>
#include <vector>

#include "hamlet/learned/learned_optimizer.hpp"
#include "hamlet/meta/meta_train.hpp"
#include "hamlet/tasks/task.hpp"

namespace hamlet::meta {

using RunConfig = std::vector<std::pair<std::string, std::string>>;

RunConfig resolved_config(const tasks::Task& task, const learned::LearnedOptimizer& optimizer,
                          const MetaTrainOptions& options);
std::string format_run_config(const RunConfig& config);
RunConfig parse_run_config(const std::string& text);

// Throws hamlet::Error ("<checkpoint>: --resume with a different configuration: KEY is A in the checkpoint, B
// now") unless `current` may continue `stored` under the resume rule.
void check_resume_config(const RunConfig& stored, const RunConfig& current, const std::string& checkpoint);

}  // namespace hamlet::meta
