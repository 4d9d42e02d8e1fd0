#pragma once
// "mixture": a distribution of registered tasks to meta-train on (docs/architecture.md, "Meta-training on many
// tasks"). It has no problems of its own: each meta-training episode k of a run seeded s trains on one component,
// drawn with probability proportional to its weight from a generator seeded by (s, k), so a run still depends only
// on its options and resumes bitwise. All B problems of an episode come from that component (one tensor program).
// Validation scores every component on its own validation problems; the selection score is their weighted mean.
//
// The components are declared in an INI file (--task=mixture --task.file=mix.ini), one section per component:
//
//   [small]             # the component's name
//   task = quadratic    # a registered task (not another mixture)
//   weight = 1          # > 0; weights are normalised
//   dim = 5             # every other key is an option of that task
//
//   [digits]
//   task = mlp
//   weight = 2
//   dataset = digits
//
// options() records the file and, as "components", every component's name, task, weight and resolved options (not
// where its data lay), so a run file or checkpoint says what was mixed even if the file changes; resume compares it.
#include <memory>
#include <string>
#include <vector>

#include "hamlet/core/option_spec.hpp"
#include "hamlet/tasks/task.hpp"

namespace hamlet::tasks {

struct MixtureOptions {
  std::string file;  // the INI file declaring the components (required)
  HAMLET_OPTIONS(MixtureOptions);
};

class MixtureTask final : public Task {
 public:
  // Reads the file and builds every component; throws hamlet::Error naming the file, section and key on a problem.
  explicit MixtureTask(MixtureOptions options);
  std::string name() const override { return "mixture"; }
  OptionMap options() const override;
  int64_t data_bytes_per_problem() const override;
  // Refused: a mixture's problems are its components' (evaluate a component, e.g. --task=quadratic --task.dim=5).
  std::unique_ptr<ProblemBatch> sample(Split split, uint64_t seed, int64_t first, int64_t count,
                                       c10::Device device) const override;
  const Task& episode_task(uint64_t seed, int64_t episode) const override;
  std::vector<TaskComponent> components() const override;

 private:
  struct Component {
    std::string name;
    double weight = 0;  // normalised
    TaskPtr task;
  };
  MixtureOptions options_;
  std::vector<Component> components_;
};

}  // namespace hamlet::tasks
