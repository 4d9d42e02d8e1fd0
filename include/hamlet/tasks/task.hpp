#pragma once
// Tasks (optimizees): a Task is a distribution of problems; a ProblemBatch holds B concrete problems as one
// tensor program.
//
// Pairing: problem i of (task, split, seed) is a pure function of those four values, whatever batch it is drawn
// in, so every optimizer sees identical problems (same W, y; same θ0 and minibatch sequence). Batched and one-by-
// one evaluation give the same per-problem numbers.
//
// Parameters are plain tensors, each [B, ...]; loss(params, step) is a pure, differentiable function of them
// returning the per-problem loss [B]. `step` selects the minibatch for stochastic tasks (ignored otherwise).
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

#include "hamlet/core/options.hpp"
#include "hamlet/core/tensor.hpp"

namespace hamlet::tasks {

// Disjoint problem pools: meta-training, validation (selection, learning-rate tuning), test (final numbers).
enum class Split { kTrain = 0, kValidation = 1, kTest = 2 };
std::string split_name(Split split);
Split parse_split(const std::string& name);  // "train" | "validation" | "test"

class ProblemBatch {
 public:
  virtual ~ProblemBatch() = default;
  // Number of problems B.
  virtual int64_t size() const = 0;
  // Starting parameters θ0 (no autograd history), each [B, ...].
  virtual TensorList initial_params() const = 0;
  // Per-problem loss F(θ) at optimizer step `step` (minibatch index for stochastic tasks), [B].
  virtual at::Tensor loss(const TensorList& params, int64_t step) const = 0;
  // Names of the parameter tensors, e.g. {"theta"} or {"w0","b0","w1","b1"}.
  virtual std::vector<std::string> param_names() const = 0;
};

class Task;

// One component of a distribution of tasks (tasks/mixture.hpp): its name, its share of the episodes, the task.
struct TaskComponent {
  std::string name;
  double weight = 1.0;  // normalised: the weights of a task's components sum to 1
  const Task* task = nullptr;
};

class Task {
 public:
  virtual ~Task() = default;
  // Registry name, e.g. "quadratic" or "mlp".
  virtual std::string name() const = 0;
  // Resolved options (and data provenance) for output files.
  virtual OptionMap options() const = 0;
  // Problems per tensor program when the caller leaves it to the task (0 = all at once). Large minibatch gathers
  // page-fault fresh memory every step, so the MLP keeps a chunk's gathered images near 16 MB.
  virtual int64_t default_batch() const { return 0; }
  // Bytes a batch holds per problem beyond its parameters (the problem's own data, a step's gathered minibatch
  // and activations), for the memory estimate that refuses oversized runs before they allocate (0 = negligible).
  virtual int64_t data_bytes_per_problem() const { return 0; }
  // Problems [first, first + count) of (split, seed), as one batch on `device`.
  virtual std::unique_ptr<ProblemBatch> sample(Split split, uint64_t seed, int64_t first, int64_t count,
                                               c10::Device device) const = 0;
  // Meta-training on a distribution of tasks: the task whose problems episode `episode` of a run seeded `seed`
  // trains on (a pure function of the two), and every component with its weight (validation scores each on its
  // own problems). A plain task is its own only component.
  virtual const Task& episode_task(uint64_t seed, int64_t episode) const { return *this; }
  virtual std::vector<TaskComponent> components() const { return {{name(), 1.0, this}}; }
};

using TaskPtr = std::shared_ptr<const Task>;

// Seed of problem `index` of (split, seed); tasks derive all randomness of that problem from it.
uint64_t problem_seed(Split split, uint64_t seed, int64_t index);

// Whether a task option only says where the data were read from (data_source, data_dir): two runs that differ in
// it read the same data. Resume, weight selection and compare's pairing do not compare it.
bool is_data_location_option(const std::string& key);

}  // namespace hamlet::tasks
