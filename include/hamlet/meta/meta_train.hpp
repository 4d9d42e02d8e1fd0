#pragma once
// Meta-training of a learned optimizer (METHODS.md §4 protocol, §10 estimators; Andrychowicz et al. 2016;
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
#include "hamlet/dist/communicator.hpp"
#include "hamlet/learned/learned_optimizer.hpp"
#include "hamlet/tasks/task.hpp"

namespace hamlet::meta {

struct MetaTrainOptions {
  int64_t epochs = 100;
  int64_t trajectories = 20;        // training trajectories per epoch
  int64_t horizon = 100;            // T, optimizee steps per trajectory
  int64_t unroll = 15;              // U, truncation window
  int64_t batch = 1;                // B, problems per trajectory (one tensor program)
  double meta_lr = 0.01;            // Adam (β 0.9/0.999, eps 1e-8) learning rate
  double clip = 0.0;                // meta-gradient norm clipping; 0 = off (faithful)
  bool second_derivatives = false;  // keep ∂g/∂φ terms (create_graph for the optimizee gradient)
  bool recompute = false;           // re-run each optimizer step in the meta-backward instead of storing its
                                    // activations (recompute.hpp): same meta-gradients, far less memory
  std::string window_loss = "optml";  // optml | dm (also F(θ_{kU}) after the window's last update)
  // How each step's per-problem loss F_b enters the window loss (meta_loss_term in trajectory.hpp): mean (F, the
  // OPT-ML meta-loss) | log (log F: every decade of progress counts alike, as small_fc_lopt's training) | clipped
  // (min(F, bound), a non-finite F counts as the bound; bound meta_loss_bound, or the episode's mean start loss
  // when that is 0).
  std::string meta_loss = "mean";
  double meta_loss_bound = 0.0;
  // Weight-reparametrisation augmentation of the training problems (tasks/reparam.hpp): each parameter tensor of
  // each training problem is optimised in units θ/s with s = 10^U(−reparam, reparam); 0 = off. Validation problems
  // are never augmented.
  double reparam = 0.0;
  bool train_tail = false;          // one extra meta-step on the partial last window
  double explode_factor = 1e3;      // cut a trajectory when its mean loss exceeds this × its start loss; 0 = off
  int64_t validation_problems = 20;
  uint64_t validation_seed = 0;
  uint64_t seed = 0;                // training problem seed
  std::string device = "cpu";
  std::string checkpoint;           // checkpoint file ("" = none)
  int64_t checkpoint_every = 1;     // epochs between checkpoints
  bool resume = false;              // continue from `checkpoint` if it exists
  // Wall-time budget of this call in seconds (0 = none), for batch-queue limits and sessions that end: meta-training
  // does not start an epoch it expects to finish past the limit (expected = its slowest epoch of this call), writes
  // the checkpoint and returns with `termination` "time limit"; `resume` continues from there as if it had not
  // stopped (bitwise). Needs `checkpoint`. Like `device`, not part of the resolved configuration.
  double time_limit = 0.0;
  bool progress = true;

  // Gradient estimator (gradient_estimator.hpp, METHODS.md §10): bptt | es | pes.
  std::string estimator = "bptt";
  int64_t es_pairs = 8;     // es / pes: antithetic pairs per truncation (each pair = two perturbed trajectories)
  double es_sigma = 0.01;   // es / pes: perturbation standard deviation σ (ε ~ N(0, σ² I) over all of φ)
  // Truncation schedule (trajectory.hpp, METHODS.md §10.5): constant (episodes of `horizon` steps) |
  // log-uniform (episode length ⌊exp(u)⌋, u ~ U[ln schedule_min, ln schedule_max)).
  std::string schedule = "constant";
  int64_t schedule_min = 10, schedule_max = 100;
  int64_t schedule_offset = 0;  // random phase of the truncation grid: n0 ~ UniformInt[0, offset) per episode
  // Data parallelism (data_parallel.hpp): this process is rank `rank` of `world_size`. bptt splits each episode's
  // B problems into equal shares (B % world_size == 0), es / pes split the antithetic pairs (es_pairs %
  // world_size == 0). Like `device`, not part of the resolved configuration: a run may resume on another number
  // of ranks.
  int64_t rank = 0;
  int64_t world_size = 1;
  void validate() const;
  OptionMap to_map() const;
};

// One row per epoch.
struct EpochRecord {
  int64_t epoch = 0;
  double train_meta_loss = 0;    // mean over the epoch's meta-steps of the window meta-loss / its terms (es / pes:
                                 // of the pairs' mean (L⁺ + L⁻)/2, i.e. at perturbed weights)
  double validation_score = 0;   // §4.4 selection score of the weights after this epoch
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
                           const MetaTrainOptions& options, dist::CommunicatorPtr communicator = nullptr);

// The §4.4 selection score: mean over `problems` validation problems of the mean of `steps` logged losses, with
// the optimizer frozen (evaluation mode).
double validation_score(const learned::LearnedOptimizer& optimizer, const tasks::Task& task, int64_t problems,
                        int64_t steps, uint64_t seed, const std::string& device);

}  // namespace hamlet::meta
