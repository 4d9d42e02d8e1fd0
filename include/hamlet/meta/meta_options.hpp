#pragma once
// The options of meta-training's parts (meta_train.hpp), each declared once (core/option_spec.hpp). Every part is
// constructed from its own options: the trajectory sampler and the window loss from ScheduleOptions, each
// gradient estimator from ScheduleOptions plus its own part of EstimatorOptions, the meta-step from
// MetaStepOptions, validation and selection from ValidationOptions, checkpoints from CheckpointOptions.
//
// Keys are flat and keep the names they had when MetaTrainOptions was one struct ("meta_lr", "es.pairs",
// "schedule.min"), so recorded configurations and checkpoints of older runs compare key by key; messages name
// the field as meta_train.KEY. docs/methods.md §4 (protocol) and §10 (estimators) define the quantities.
#include <cstdint>
#include <string>

#include "hamlet/core/option_spec.hpp"

namespace hamlet::meta {

// What the episodes look like and how a window's loss is formed (trajectory.hpp).
struct ScheduleOptions {
  int64_t epochs = 100;
  int64_t trajectories = 20;  // training episodes per epoch
  int64_t horizon = 100;      // T, optimizee steps per episode (constant schedule) and per validation run
  int64_t unroll = 15;        // U, truncation window
  int64_t batch = 1;          // B, problems per episode (one tensor program)
  uint64_t seed = 0;          // seed of the training problems (and of lengths, offsets and perturbations)
  // constant (episodes of `horizon` steps) | log-uniform (length ⌊exp(u)⌋, u ~ U[ln length_min, ln length_max)).
  std::string truncation = "constant";
  int64_t length_min = 10, length_max = 100;
  int64_t offset = 0;  // random phase of the truncation grid: n0 ~ UniformInt[0, offset) per episode
  // Weight-reparametrisation augmentation of the training problems (tasks/reparam.hpp): every parameter tensor in
  // units θ/s with s = 10^U(−reparam, reparam) per problem and tensor; 0 = off. Validation problems never are.
  double reparam = 0.0;
  std::string window_loss = "optml";  // optml | dm (adds F(θ) after the window's last update)
  // How each step's per-problem loss F enters the window loss (trajectory.hpp meta_loss_term): mean | log |
  // clipped (min(F, bound), non-finite = bound; bound meta_loss_bound, or the episode's start loss when 0).
  std::string meta_loss = "mean";
  double meta_loss_bound = 0.0;
  bool train_tail = false;      // one extra meta-step on the partial last window
  double explode_factor = 1e3;  // cut a trajectory whose mean loss exceeds this × its start loss; 0 = off
  HAMLET_OPTIONS(ScheduleOptions);
};

// Truncated BPTT's own settings (bptt.hpp).
struct BpttOptions {
  bool second_derivatives = false;  // keep ∂g/∂φ terms (create_graph for the optimizee gradient)
  bool recompute = false;           // keep θ and the state every ⌈√U⌉ steps, re-run the rest in the meta-backward
                                    // (recompute.hpp: checkpointed_segment over recomputed_update)
  HAMLET_OPTIONS(BpttOptions);
};

// The evolution-strategies estimators' settings (es.hpp, pes.hpp).
struct EsOptions {
  int64_t pairs = 8;     // antithetic pairs per truncation
  double sigma = 0.01;   // perturbation standard deviation σ (ε ~ N(0, σ² I) over all of φ)
  HAMLET_OPTIONS(EsOptions);
};

// The first estimator of the registry (gradient_estimator.hpp), the default of EstimatorOptions::name.
std::string default_estimator_name();

// Which estimator (gradient_estimator.hpp registry) and every estimator's settings; an estimator reads its own
// part, and the parts it does not read must keep their defaults.
struct EstimatorOptions {
  std::string name = default_estimator_name();
  BpttOptions bptt;
  EsOptions es;
  HAMLET_OPTIONS(EstimatorOptions);
};

// Adam on φ (β 0.9 / 0.999, eps 1e-8) and its guards (meta_step.hpp).
struct MetaStepOptions {
  double lr = 0.01;
  double clip = 0.0;  // meta-gradient norm clipping; 0 = off (faithful)
  HAMLET_OPTIONS(MetaStepOptions);
};

// Scoring the weights after each epoch and keeping the best (epoch_hooks.hpp, docs/methods.md §4.4).
struct ValidationOptions {
  int64_t problems = 20;
  uint64_t seed = 0;
  HAMLET_OPTIONS(ValidationOptions);
};

// Checkpoints and the wall-time budget (epoch_hooks.hpp, checkpoint.hpp). Not part of the resolved configuration.
struct CheckpointOptions {
  std::string path;   // checkpoint file ("" = none)
  int64_t every = 1;  // epochs between checkpoints
  bool resume = false;
  // Wall-time budget of this call in seconds (0 = none): meta-training does not start an epoch it expects to
  // finish past it, writes the checkpoint and returns with termination "time limit"; resume continues bitwise.
  double time_limit = 0.0;
  HAMLET_OPTIONS(CheckpointOptions);
};

}  // namespace hamlet::meta
