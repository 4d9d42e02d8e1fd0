#pragma once
// Trajectories in flight and the sampler that starts them (docs/methods.md §4.1, §10.5).
//
// Episode k of a run (k = (epoch − 1) · trajectories + j for the j-th episode of an epoch) is a pure function of
// (task, seed, k): problems [k·B, (k+1)·B) of the train split, its length and truncation grid, and the seed of
// any perturbations an estimator draws in it. A run therefore depends only on its options, and resuming at an
// epoch boundary needs no generator state.
//
// Truncation schedules (learned_optimization `truncation_schedule.py`):
//   constant     every episode has `horizon` updates;
//   log-uniform  length = ⌊exp(u)⌋ with u ~ Uniform[ln schedule_min, ln schedule_max), drawn per episode.
// Start offsets: with schedule_offset = o > 0 each episode draws n0 ~ UniformInt[0, o) and its truncation grid is
// shifted by n0: a window closes after step t when (t + 1 + n0) mod U = 0 (or at the episode's last step), so
// truncations do not all start at step 0. hamlet runs the episodes of an epoch one after another, not as
// parallel workers, so learned_optimization's offset of the worker's step counter (which de-synchronises the
// episode ends of parallel workers) becomes this random phase of the grid within each episode; o = 0 gives the
// faithful grid 0, U, 2U, ...
#include <cstdint>
#include <memory>

#include <string>

#include "hamlet/learned/learned_optimizer.hpp"
#include "hamlet/meta/meta_options.hpp"
#include "hamlet/tasks/task.hpp"

namespace hamlet::meta {

// What the sampler hands to an estimator: the problems and the shape of one episode.
struct Episode {
  std::shared_ptr<const tasks::ProblemBatch> batch;
  int64_t index = 0;   // k, the episode's number in the run
  int64_t length = 0;  // updates in the episode
  int64_t phase = 0;   // n0 mod U: shift of the truncation grid
  uint64_t seed = 0;   // seed of the estimator's perturbations in this episode
  // Index of the last step of the window that starts at step `t` (t <= last < length).
  int64_t window_last(int64_t t, int64_t unroll) const;
  // Whether the window ending at step `last` trains φ: it closes on the truncation grid, or it is the episode's
  // partial tail and `train_tail` is set.
  bool window_trains(int64_t last, int64_t unroll, bool train_tail) const;
};

// B problems advancing in lock-step (one tensor program) from θ0: one member of the trajectories in flight.
struct Trajectory {
  TensorList params;             // θ_t, each [B, ...]
  optim::OptimizerState state;   // the learned optimizer's carried state
  int64_t step = 0;              // t, updates applied so far
};

// Fresh trajectory at the episode's θ0 with the optimizer's initial state.
Trajectory start_trajectory(const Episode& episode, const learned::LearnedOptimizer& optimizer);

// θ and state detached: the next truncation starts from new leaves with the same values.
Trajectory detach_trajectory(const Trajectory& trajectory);
optim::OptimizerState detach_state(const optim::OptimizerState& state);

// Whether a trajectory whose mean loss is `mean_loss` must be cut (non-finite, or above factor × start loss;
// factor 0 = never).
bool explodes(double mean_loss, double start_loss, double factor);
// One step's contribution to the window loss from the per-problem losses f [B] (schedule.meta_loss): f (mean),
// log max(f, 1e-30) (log), or min(f, bound) with non-finite values set to the bound (clipped; bound =
// schedule.meta_loss_bound, or `start_loss` when that is 0). Differentiable in f; [B].
at::Tensor meta_loss_term(const at::Tensor& f, const ScheduleOptions& schedule, double start_loss);

// Which share of each episode's B problems this process runs: share `index` of `count` equal shares (data-parallel
// ranks of an estimator that splits problems, GradientEstimator::rank_split); {0, 1} = all of them.
struct ProblemShare {
  int64_t index = 0, count = 1;
};

class TrajectorySampler {
 public:
  TrajectorySampler(const tasks::Task& task, const ScheduleOptions& schedule, ProblemShare share = {},
                    std::string device = "cpu");
  // Episode `index` of epoch `epoch` (1-based), its problems on `device`. With a share r of W the batch holds
  // problems [k·B + r·B/W, k·B + (r+1)·B/W).
  Episode episode(int64_t epoch, int64_t index) const;
  // Length of episode k under the schedule (a pure function of seed and k).
  int64_t episode_length(int64_t k) const;

 private:
  const tasks::Task& task_;
  ScheduleOptions schedule_;
  ProblemShare share_;
  std::string device_;
};

}  // namespace hamlet::meta
