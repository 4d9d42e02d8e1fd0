#include "hamlet/meta/meta_train.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <limits>
#include <map>

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

// Whether the next epoch would end past options.time_limit. Rank 0's clock and --time-limit decide for the whole
// group (the ranks must stop after the same epoch), so its answer is broadcast on every epoch; the other ranks'
// --time-limit is ignored.
bool time_limit_reached(const MetaTrainOptions& options, double elapsed, double slowest_epoch,
                        parallel::Communicator& communicator) {
  const bool parallel = communicator.world_size() > 1;
  if (options.checkpointing.time_limit <= 0 && !parallel) return false;
  const bool over = options.checkpointing.time_limit > 0 && elapsed + slowest_epoch > options.checkpointing.time_limit;
  at::Tensor stop = at::full({1}, over ? 1.0 : 0.0, at::kDouble);
  if (parallel) communicator.broadcast(stop, 0);
  return stop.item<double>() > 0;
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

// The first key of `config` whose value differs in `reference`, as ": KEY is 'A' on rank R, 'B' on rank 0" (""
// when they agree).
std::string first_difference(const std::string& config, const std::string& reference, int64_t rank) {
  const RunConfig mine = parse_run_config(config), theirs = parse_run_config(reference);
  const std::map<std::string, std::string> ours(mine.begin(), mine.end()), other(theirs.begin(), theirs.end());
  RunConfig order = mine;
  for (const auto& kv : theirs) {
    if (!ours.count(kv.first)) order.push_back(kv);
  }
  for (const auto& [key, unused] : order) {
    const auto a = ours.find(key), b = other.find(key);
    const std::string here = a == ours.end() ? "(absent)" : a->second;
    const std::string there = b == other.end() ? "(absent)" : b->second;
    if (here != there) {
      return ": " + key + " is '" + here + "' on rank " + std::to_string(rank) + ", '" + there + "' on rank 0";
    }
  }
  return "";
}

// Every rank must train the same run: rank 0's resolved configuration is compared on every rank, and all ranks
// learn which ones differ, so they fail together instead of leaving the others waiting in a collective. The first
// differing rank's configuration then goes to every rank, so each message (rank 0's too) names the first differing
// key and both values.
void check_same_config(parallel::Communicator& communicator, const std::string& config) {
  const std::string reference = parallel::broadcast_string(communicator, config);
  at::Tensor differs = at::zeros({communicator.world_size()}, at::kDouble);
  differs[communicator.rank()] = reference == config ? 0.0 : 1.0;
  communicator.all_reduce_sum(differs);
  std::vector<int64_t> ranks;
  for (int64_t r = 0; r < communicator.world_size(); ++r) {
    if (differs[r].item<double>() > 0) ranks.push_back(r);
  }
  if (ranks.empty()) return;
  std::string list;
  for (const int64_t r : ranks) list += (list.empty() ? "" : ", ") + std::to_string(r);
  const int64_t first = ranks.front();
  const std::string theirs = parallel::broadcast_string(communicator, config, first);
  throw Error("rank " + std::to_string(communicator.rank()) + ": rank(s) " + list +
              " run a different meta-training configuration from rank 0" +
              first_difference(theirs, reference, first));
}

// Rank 0's weights, meta-optimizer state and first epoch on every rank (after a resume they come from its
// checkpoint).
void share_start(parallel::Communicator& communicator, learned::LearnedOptimizer& optimizer,
                 optim::OptimizerState& meta_state, int64_t& first_epoch) {
  at::Tensor counters = at::tensor({static_cast<double>(first_epoch), static_cast<double>(meta_state.step)}, at::kDouble);
  communicator.broadcast(counters, 0);
  first_epoch = static_cast<int64_t>(counters[0].item<double>());
  meta_state.step = static_cast<int64_t>(counters[1].item<double>());
  TensorList weights = detach_all(optimizer.weights());
  parallel::broadcast_tensors(communicator, weights);
  optimizer.set_weights(weights);
  for (auto& [name, list] : meta_state.slots) parallel::broadcast_tensors(communicator, list);
}

}  // namespace

const OptionSpec<MetaTrainOptions>& MetaTrainOptions::spec() {
  using O = MetaTrainOptions;
  static const auto s = OptionSpec<O>("meta_train")
                            .include(&O::schedule)
                            .include(&O::estimator)
                            .include(&O::meta_step)
                            .include(&O::validation);
  return s;
}

void MetaTrainOptions::validate() const {
  spec().validate(*this);
  checkpointing.validate();
  // Meta-training reads only the rank and world size (the caller connects the communicator).
  HAMLET_CHECK(parallel.world_size >= 1 && parallel.rank >= 0 && parallel.rank < parallel.world_size,
               "meta_train: rank ", parallel.rank, " of world size ", parallel.world_size, " is out of range");
  // Only rank 0 reads and writes the checkpoint (and its --time-limit decides for the group): the other ranks need
  // no path.
  const bool root = parallel.rank == 0;
  HAMLET_CHECK(!root || !checkpointing.resume || !checkpointing.path.empty(), "meta_train.resume needs a checkpoint path");
  HAMLET_CHECK(!root || checkpointing.time_limit == 0 || !checkpointing.path.empty(),
               "meta_train.time_limit needs a checkpoint path (the state to resume from when the limit stops it)");
  make_estimator(*this);  // the estimator checks that its work divides among the ranks
}

namespace {

double one_task_score(const learned::LearnedOptimizer& optimizer, const tasks::Task& task, int64_t problems,
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

}  // namespace

std::vector<double> component_scores(const learned::LearnedOptimizer& optimizer, const tasks::Task& task,
                                     int64_t problems, int64_t steps, uint64_t seed, const std::string& device) {
  std::vector<double> out;
  for (const auto& c : task.components()) out.push_back(one_task_score(optimizer, *c.task, problems, steps, seed, device));
  return out;
}

double combined_score(const tasks::Task& task, const std::vector<double>& scores) {
  const auto components = task.components();
  HAMLET_CHECK(scores.size() == components.size(), "combined_score: ", scores.size(), " scores for ",
               components.size(), " components");
  double score = 0;
  for (std::size_t i = 0; i < scores.size(); ++i) score += components[i].weight * scores[i];
  return score;
}

double validation_score(const learned::LearnedOptimizer& optimizer, const tasks::Task& task, int64_t problems,
                        int64_t steps, uint64_t seed, const std::string& device) {
  return combined_score(task, component_scores(optimizer, task, problems, steps, seed, device));
}

MetaTrainResult meta_train(learned::LearnedOptimizer& optimizer, const tasks::Task& task,
                           const MetaTrainOptions& options, parallel::CommunicatorPtr communicator) {
  options.validate();
  if (!communicator) communicator = parallel::local_communicator();
  const bool root = communicator->is_root();
  const bool parallel = communicator->world_size() > 1;
  const std::string config = format_run_config(resolved_config(task, optimizer, options));
  if (parallel) check_same_config(*communicator, config);
  // Everything that can be refused is refused before the first trajectory.
  if (root && !options.checkpointing.path.empty()) {
    HAMLET_CHECK(!options.checkpointing.resume || std::filesystem::exists(options.checkpointing.path), options.checkpointing.path,
                 ": --resume given but the checkpoint does not exist");
    io::check_writable(options.checkpointing.path);  // creates and removes a temporary file next to it
  }
  const auto start = std::chrono::steady_clock::now();

  optimizer.set_trainable(false);
  EpochTrainer trainer(optimizer, task, options, parallel ? communicator : nullptr);
  MetaTrainResult result;
  int64_t first_epoch = 1;
  if (!root) {
    // Rank 0 resumes or scores the initialisation; the start is then broadcast to every rank.
  } else if (options.checkpointing.resume) {
    Checkpoint c = load_checkpoint(options.checkpointing.path);
    HAMLET_CHECK(c.architecture == optimizer.architecture(), options.checkpointing.path, ": checkpoint is for '",
                 c.architecture, "', the optimizer is '", optimizer.architecture(), "'");
    check_resume_config(parse_run_config(c.config), parse_run_config(config), options.checkpointing.path);
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
    spdlog::info("resuming meta-training from {} after epoch {}", options.checkpointing.path, c.epoch);
  } else {
    result.initial_score = validation_score(optimizer, task, options.validation.problems, options.schedule.horizon,
                                            options.validation.seed, options.device);
    result.best_score = result.initial_score;
    result.best_weights = clone_all(optimizer.weights());
    if (options.progress) {
      spdlog::info("{}: validation score of the initialisation {:.5g}", optimizer.name(), result.initial_score);
    }
  }

  if (parallel) share_start(*communicator, optimizer, trainer.meta_step().state(), first_epoch);

  Progress progress(optimizer.name() + " meta-training", options.schedule.epochs, "epochs", 3.0, options.progress && root);
  result.last_epoch = first_epoch - 1;
  double slowest_epoch = 0;
  for (int64_t epoch = first_epoch; epoch <= options.schedule.epochs; ++epoch) {
    const auto epoch_start = std::chrono::steady_clock::now();
    EpochRecord record = trainer.train_epoch(epoch, result);
    if (root) select_after_epoch(optimizer, task, options, record, result);
    record.seconds = seconds_since(epoch_start);
    slowest_epoch = std::max(slowest_epoch, record.seconds);
    result.curve.push_back(record);
    result.last_epoch = epoch;
    if (root) {
      log_epoch(record, result);
      progress.update(epoch - first_epoch + 1);
      checkpoint_if_due(optimizer, options, epoch, trainer.meta_step().state(), result, config);
    }
    if (epoch < options.schedule.epochs && time_limit_reached(options, seconds_since(start), slowest_epoch, *communicator)) {
      if (root && !checkpoint_due(options, epoch)) {
        write_checkpoint(optimizer, options, epoch, trainer.meta_step().state(), result, config);
      }
      result.termination = "time limit";
      break;
    }
  }
  if (!root) result.best_weights = clone_all(optimizer.weights());
  optimizer.set_weights(result.best_weights);
  optimizer.set_trainable(false);
  result.seconds = seconds_since(start);
  return result;
}

}  // namespace hamlet::meta
