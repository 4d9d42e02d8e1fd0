#pragma once
// Meta-training of a learned optimizer by unrolled, truncated back-propagation (METHODS.md §4; Andrychowicz et al.
// 2016; AfoninAndrei/OPT-ML src/training.py).
//
// One epoch = `trajectories` training trajectories; each trajectory samples B fresh problems from the task's train
// split (problem indices advance deterministically with epoch and trajectory, so a run is a pure function of its
// seed), starts them at θ0 with a fresh optimizer state, and runs `horizon` steps:
//
//   f_t = F(θ_t) (minibatch t), g_t = ∇F(θ_t) (detached unless second_derivatives), θ_{t+1} = update(θ_t, g_t, ...)
//   after every `unroll` steps: meta-loss L = Σ_{t in window} mean_B f_t   (+ F(θ_{kU}) with window_loss = dm)
//                               Adam step on φ with ∇_φ L; θ and the optimizer state are detached (new leaves).
//
// With the faithful defaults the first term of each window sits at a detached θ (no gradient), the window's last
// update is trained only with window_loss = dm, and losses after the last full window are not back-propagated
// unless train_tail is set. Problems of a meta-batch are averaged (mean over B), so B = 1 is the paper's loss.
//
// Stabilisers: meta-gradient norm clipping (clip > 0), a non-finite meta-loss or meta-gradient skips the step
// (counted and logged), and a trajectory whose mean loss exceeds explode_factor × its starting loss is cut.
// After each epoch the frozen optimizer is scored on validation problems (mean over problems of the mean of the
// `horizon` logged losses, §4.4); the best weights are kept. Checkpoints hold everything needed to continue
// bitwise identically (weights, best weights, meta-optimizer state, epoch, best score, counters, curves).
//
// Memory: by default the autograd graph of a window stores every step's optimizer activations; with `recompute`
// only each step's inputs are stored and the step is re-run during the backward (hamlet/meta/recompute.hpp).
#include <cstdint>
#include <string>
#include <vector>

#include "hamlet/core/options.hpp"
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
  bool train_tail = false;          // one extra meta-step on the partial last window
  double explode_factor = 1e3;      // cut a trajectory when its mean loss exceeds this × its start loss; 0 = off
  int64_t validation_problems = 20;
  uint64_t validation_seed = 0;
  uint64_t seed = 0;                // training problem seed
  std::string device = "cpu";
  std::string checkpoint;           // checkpoint file ("" = none)
  int64_t checkpoint_every = 1;     // epochs between checkpoints
  bool resume = false;              // continue from `checkpoint` if it exists
  bool progress = true;
  void validate() const;
  OptionMap to_map() const;
};

// One row per epoch.
struct EpochRecord {
  int64_t epoch = 0;
  double train_meta_loss = 0;    // mean over the epoch's meta-steps of the window meta-loss / window length
  double validation_score = 0;   // §4.4 selection score of the weights after this epoch
  double grad_norm = 0;          // mean meta-gradient norm (before clipping) over the epoch's meta-steps
  int64_t skipped_steps = 0;     // non-finite meta-steps skipped in this epoch
  int64_t cut_trajectories = 0;  // trajectories cut for exploding loss in this epoch
  double seconds = 0;            // wall time of the epoch (excluded from bitwise comparisons)
};

struct MetaTrainResult {
  std::vector<EpochRecord> curve;  // all epochs, including those before a resume
  double initial_score = 0;        // validation score of the untrained initialisation
  double best_score = 0;
  int64_t best_epoch = 0;          // 0 = the initialisation was never beaten
  TensorList best_weights;
  int64_t meta_steps = 0, skipped_steps = 0, cut_trajectories = 0;
  double seconds = 0;        // wall time of this call
  double train_seconds = 0;  // of which in training trajectories (validation and checkpoints excluded)
  int64_t optimizee_steps = 0;  // problem-steps taken in training trajectories during this call
};

// Meta-trains `optimizer` in place on `task`; at the end the optimizer holds the best weights (by validation).
MetaTrainResult meta_train(learned::LearnedOptimizer& optimizer, const tasks::Task& task,
                           const MetaTrainOptions& options);

// The §4.4 selection score: mean over `problems` validation problems of the mean of `steps` logged losses, with
// the optimizer frozen (evaluation mode).
double validation_score(const learned::LearnedOptimizer& optimizer, const tasks::Task& task, int64_t problems,
                        int64_t steps, uint64_t seed, const std::string& device);

}  // namespace hamlet::meta
