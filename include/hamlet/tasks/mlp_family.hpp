#pragma once
// "mlp-family": a sampled family of MLP image classifiers (issue 30 §1; the task families of learned_optimization
// and the small image-MLP tasks Celo meta-trains on). Every problem draws its own configuration from the declared
// ranges: the dataset (`datasets`), the hidden activation (`activations`), the width of every hidden layer
// (`widths`) and the number of hidden layers (`depths`), each uniformly from its list, from a generator seeded by
// the problem's seed (problem_seed(split, seed, i), stream 1), so problem i is a pure function of (options, split,
// seed, i). It then IS problem i of the mlp task of that configuration (mlp.hpp: same initial parameters, same
// minibatches): `configuration(split, seed, i)` names it.
//
// Batching: problems of different configurations cannot share one tensor program, so default_batch() is 1 and the
// evaluator runs one problem per program; sample() over a range whose problems share one configuration returns
// them as one batch and refuses a mixed range naming the problems. Meta-training draws a configuration per episode
// (episode_task: from (seed, episode), stream 2) and trains the episode's B problems of it in one program, as
// Celo trains one sampled task per unroll. Validation scores `validation_configs` configurations drawn once from
// stream 3 (distinct ones, as many as the ranges allow; components(), equal weights), each on its own
// validation problems.
//
// Data: each dataset from its default location (data::load_dataset; the data root is --data-dir or
// HAMLET_DATA_DIR), loaded once and split once with split_seed, shared by every configuration on it.
//
// Options: datasets ("digits:mnist:fashion-mnist", ':'-separated; default "digits"), activations
// ("relu:tanh:sigmoid:elu"), widths ("16:32:64"), depths ("1:2"), validation_configs (4), and the data options of
// mlp: batch_size (128), split_seed (0), train_fraction (0.5), validation_fraction (0.2), dtype.
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "hamlet/core/option_spec.hpp"
#include "hamlet/tasks/mlp.hpp"
#include "hamlet/tasks/task.hpp"

namespace hamlet::tasks {

struct MlpFamilyOptions : ImageSplitOptions {
  std::string datasets = "digits";
  std::string activations = "relu:tanh:sigmoid:elu";
  std::vector<int64_t> widths{16, 32, 64};
  std::vector<int64_t> depths{1, 2};
  int64_t validation_configs = 4;
  HAMLET_OPTIONS(MlpFamilyOptions);
};

class MlpFamilyTask final : public Task {
 public:
  // Loads every listed dataset; throws hamlet::Error naming the option for a bad list or a missing dataset.
  explicit MlpFamilyTask(MlpFamilyOptions options);
  std::string name() const override { return "mlp-family"; }
  OptionMap options() const override;
  int64_t default_batch() const override { return 1; }
  int64_t data_bytes_per_problem() const override;
  std::unique_ptr<ProblemBatch> sample(Split split, uint64_t seed, int64_t first, int64_t count,
                                       c10::Device device) const override;
  const Task& episode_task(uint64_t seed, int64_t episode) const override;
  std::vector<TaskComponent> components() const override;

  // The configuration of problem i of (split, seed), e.g. "digits relu 32x2", and its mlp task.
  std::string configuration(Split split, uint64_t seed, int64_t index) const;
  const MlpTask& configuration_task(Split split, uint64_t seed, int64_t index) const;
  // Every configuration the ranges allow (datasets x activations x widths x depths).
  int64_t configuration_count() const { return static_cast<int64_t>(tasks_.size()); }

 private:
  // The configuration drawn from a generator seeded by `seed`: an index into tasks_.
  std::size_t draw(uint64_t seed) const;

  MlpFamilyOptions options_;
  std::vector<std::string> datasets_, activations_;
  std::vector<std::string> names_;                   // one per configuration, in tasks_ order
  std::vector<std::shared_ptr<const MlpTask>> tasks_;
  std::vector<std::size_t> validation_;              // configurations scored by validation
};

}  // namespace hamlet::tasks
