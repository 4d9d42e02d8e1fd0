#pragma once
// Meta-training of a learned optimizer (docs/methods.md §4 protocol, §10 estimators; Andrychowicz et al. 2016;
// AfoninAndrei/OPT-ML src/training.py; google/learned_optimization for ES / PES).
//
// One epoch = `trajectories` training episodes; each episode samples B fresh problems from the task's train
// split (problem indices advance deterministically with epoch and episode, so a run is a pure function of its
// seed), starts them at θ0 with a fresh optimizer state, and runs `horizon` steps (or a length drawn from the
// truncation schedule, trajectory.hpp):
//
//   f_t = F(θ_t) (minibatch t), g_t = ∇F(θ_t) (detached unless second_derivatives), θ_{t+1} = update(θ_t, g_t, ...)
//   after every `unroll` steps: meta-loss L = Σ_{t in window} mean_B f_t   (+ F(θ_{kU}) with window_loss = dm)
//                               Adam step on φ with an estimate of ∇_φ L; θ and the optimizer state are detached.
//
// The parts (each replaceable, each in its own header):
//   trajectory.hpp          TrajectorySampler: episode k of the run -> problems, length, truncation grid, seed
//   gradient_estimator.hpp  GradientEstimator: advances the trajectories in flight by one truncation and returns
//                           a meta-gradient estimate with diagnostics (bptt.hpp, es.hpp, pes.hpp)
//   meta_step.hpp           MetaOptimizerStep: Adam on φ, non-finite guard, clipping, undefined-gradient skip
//   epoch_trainer.hpp       EpochTrainer: sampler -> estimator -> meta-step for one epoch (what benchmark runs)
//   epoch_hooks.hpp         after each epoch: validation and best-state selection, checkpoint, log
//   run_config.hpp          the fully resolved configuration stored in checkpoints and checked on resume
//
// With the faithful defaults (estimator = bptt) the first term of each window sits at a detached θ (no
// gradient), the window's last update is trained only with window_loss = dm, and losses after the last full
// window are not back-propagated unless train_tail is set. Problems of a meta-batch are averaged (mean over B),
// so B = 1 is the paper's loss. The default configuration gives bitwise the numbers of the single-function
// trainer this replaced.
//
// Stabilisers: meta-gradient norm clipping (clip > 0), a non-finite meta-loss or meta-gradient skips the step
// (counted and logged), a window whose meta-gradient is undefined for every weight (the loss does not depend on
// φ, e.g. U = 1 with window_loss = optml) is skipped and counted instead of an Adam step on zeros, and a
// trajectory whose mean loss exceeds explode_factor × its starting loss is cut. After each epoch the frozen
// optimizer is scored on validation problems (mean over problems of the mean of the `horizon` logged losses,
// §4.4); the best weights are kept. Checkpoints hold everything needed to continue bitwise identically (weights,
// best weights, meta-optimizer state, epoch, best score, counters, curves) and the resolved configuration;
// resuming with another configuration is an error (run_config.hpp).
//
// Memory: bptt's autograd graph of a window stores every step's optimizer activations; with `recompute` only
// each step's inputs are stored and the step is re-run during the backward (hamlet/meta/recompute.hpp). es and
// pes run forward passes only (no graph over φ), so their memory does not grow with the window.
#include <cstdint>
#include <string>
#include <vector>

#include "hamlet/core/options.hpp"
#include "hamlet/parallel/communicator.hpp"
#include "hamlet/meta/meta_options.hpp"
#include "hamlet/learned/learned_optimizer.hpp"
#include "hamlet/tasks/task.hpp"

namespace hamlet::meta {

// The whole configuration: the parts' options (meta_options.hpp) plus where the run executes. spec() lists the
// parts that define the run (schedule, estimator, meta-step, validation): to_map() is the resolved configuration
// recorded in run files and compared on resume (run_config.hpp). Checkpointing, the ranks, the device and
// progress lines are not part of it: a run may resume on another machine or number of ranks.
struct MetaTrainOptions {
  ScheduleOptions schedule;
  EstimatorOptions estimator;
  MetaStepOptions meta_step;
  ValidationOptions validation;
  CheckpointOptions checkpointing;
  // Data parallelism (data_parallel.hpp): this process is rank parallel.rank of parallel.world_size; how the
  // ranks share the work is the estimator's (GradientEstimator::rank_split). Only rank and world_size are read here.
  parallel::DistributedOptions parallel;
  std::string device = "cpu";
  bool progress = true;

  static const OptionSpec<MetaTrainOptions>& spec();
  OptionMap to_map() const { return spec().to_map(*this); }
  // Every part's checks, the rules that join them (resume and time_limit need a checkpoint path on rank 0), and the
  // estimator's own: its options, and that its work divides among the ranks.
  void validate() const;
};

// One row per epoch.
struct EpochRecord {
  int64_t epoch = 0;
  double train_meta_loss = 0;    // mean over the epoch's meta-steps of the window meta-loss / its terms (es / pes:
                                 // of the pairs' mean (L⁺ + L⁻)/2, i.e. at perturbed weights)
  double validation_score = 0;   // §4.4 selection score of the weights after this epoch
  // A distribution of tasks (tasks/mixture.hpp): each component's score, in the order of task.components() (their
  // weighted mean is validation_score); empty for a single task.
  std::vector<double> component_scores;
  double grad_norm = 0;          // mean meta-gradient norm (before clipping) over the epoch's meta-steps
  int64_t skipped_steps = 0;     // non-finite meta-steps skipped in this epoch
  int64_t cut_trajectories = 0;  // trajectories cut for exploding loss in this epoch
  double seconds = 0;            // wall time of the epoch (excluded from bitwise comparisons)
  int64_t undefined_steps = 0;   // windows skipped because the meta-gradient was undefined for every weight
};

struct MetaTrainResult {
  std::vector<EpochRecord> curve;  // all epochs, including those before a resume
  double initial_score = 0;        // validation score of the untrained initialisation
  double best_score = 0;
  int64_t best_epoch = 0;          // 0 = the initialisation was never beaten
  TensorList best_weights;
  int64_t meta_steps = 0, skipped_steps = 0, cut_trajectories = 0, undefined_steps = 0;
  double seconds = 0;        // wall time of this call
  // Why the call returned: "epochs" (every epoch done) | "time limit" (stopped after `last_epoch` at
  // options.time_limit; the checkpoint holds the state to resume from).
  std::string termination = "epochs";
  int64_t last_epoch = 0;    // the last epoch trained (in this or an earlier call)
  double train_seconds = 0;  // of which in training trajectories (validation and checkpoints excluded)
  int64_t optimizee_steps = 0;  // problem-steps taken in training trajectories during this call
};

// Meta-trains `optimizer` in place on `task`; at the end the optimizer holds the best weights (by validation).
// Before any work it throws hamlet::Error when: `resume` is set and the checkpoint does not exist; the
// checkpoint's directory cannot be written; the checkpoint was made for another architecture or with another
// resolved configuration (run_config.hpp names the first differing key; only `epochs` may grow).
//
// With a communicator of world_size > 1 (options.rank / world_size must match it) every rank calls this with the
// same options: rank 0 validates, selects, checkpoints and resumes; the weights, the meta-optimizer state and the
// first epoch are broadcast from rank 0 at the start, and every window's meta-gradient is combined across ranks
// before the meta-step (data_parallel.hpp), so all ranks hold the same weights. Only rank 0's result carries
// validation scores and the selected weights; the caller writes files on rank 0 only.
MetaTrainResult meta_train(learned::LearnedOptimizer& optimizer, const tasks::Task& task,
                           const MetaTrainOptions& options, parallel::CommunicatorPtr communicator = nullptr);

// The §4.4 selection score: mean over `problems` validation problems of the mean of `steps` logged losses, with
// the optimizer frozen (evaluation mode). For a distribution of tasks, the weighted mean of its components' scores
// (each on `problems` validation problems of its own); component_scores gives them one by one.
double validation_score(const learned::LearnedOptimizer& optimizer, const tasks::Task& task, int64_t problems,
                        int64_t steps, uint64_t seed, const std::string& device);
std::vector<double> component_scores(const learned::LearnedOptimizer& optimizer, const tasks::Task& task,
                                     int64_t problems, int64_t steps, uint64_t seed, const std::string& device);
// The selection score from the components' scores: their weighted mean (a single task: its score).
double combined_score(const tasks::Task& task, const std::vector<double>& scores);

}  // namespace hamlet::meta
