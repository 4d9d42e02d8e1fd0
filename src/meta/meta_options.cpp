#include "hamlet/meta/meta_options.hpp"

#include "hamlet/meta/gradient_estimator.hpp"

namespace hamlet::meta {
namespace {

// Every part reports its fields as meta_train.KEY, as MetaTrainOptions does when it includes them.
constexpr const char* kOwner = "meta_train";

}  // namespace

const OptionSpec<ScheduleOptions>& ScheduleOptions::spec() {
  using O = ScheduleOptions;
  static const auto s =
      OptionSpec<O>(kOwner)
          .add("epochs", &O::epochs, "epochs", checks::positive)
          .add("trajectories", &O::trajectories, "training trajectories per epoch", checks::positive)
          .add("horizon", &O::horizon, "optimizee steps per trajectory T (and per validation run)", checks::positive)
          .add("unroll", &O::unroll, "truncation window U", checks::positive)
          .add("batch", &O::batch, "problems per trajectory B (one tensor program)", checks::positive)
          .add("seed", &O::seed, "seed of the training problems")
          .add("schedule", &O::truncation,
               "truncation schedule: constant (episodes of --horizon steps) | log-uniform (lengths between "
               "--schedule.min and --schedule.max)",
               checks::one_of({"constant", "log-uniform"}))
          .add("schedule.min", &O::length_min, "log-uniform schedule: shortest episode")
          .add("schedule.max", &O::length_max, "log-uniform schedule: episode lengths < this")
          .add("schedule.offset", &O::offset,
               "random phase of the truncation grid, drawn per episode from [0, offset) (0 = windows at 0, U, 2U, "
               "...)",
               checks::non_negative)
          .add("reparam", &O::reparam,
               "weight-reparametrisation augmentation of the training problems: every parameter tensor in units "
               "theta/s, s = 10^U(-R, R) per problem and tensor; 0 = off",
               checks::non_negative)
          .add("window_loss", &O::window_loss, "optml | dm (also the loss after the window's last update)",
               checks::one_of({"optml", "dm"}))
          .add("meta_loss", &O::meta_loss,
               "how each step's loss F enters the meta-loss: mean (F) | log (log F) | clipped (min(F, bound), "
               "non-finite = bound)",
               checks::one_of({"mean", "log", "clipped"}))
          .add("meta_loss_bound", &O::meta_loss_bound, "bound of meta_loss=clipped; 0 = the episode's mean start loss",
               checks::non_negative)
          .add("train_tail", &O::train_tail, "meta-step on the partial last window too")
          .add("explode_factor", &O::explode_factor,
               "cut a trajectory whose loss exceeds this multiple of its start (0 = off)", checks::non_negative)
          .rule([](const std::string& owner, const O& o) {
            if (o.truncation != "log-uniform") return;
            check_positive(owner + ".schedule.min", o.length_min);
            HAMLET_CHECK(o.length_max > o.length_min, owner, ".schedule.max must exceed schedule.min (",
                         o.length_min, "), got ", o.length_max);
          });
  return s;
}

const OptionSpec<BpttOptions>& BpttOptions::spec() {
  static const auto s =
      OptionSpec<BpttOptions>(kOwner)
          .add("second_derivatives", &BpttOptions::second_derivatives,
               "bptt: keep second-order terms of the optimizee gradient")
          .add("recompute", &BpttOptions::recompute,
               "bptt: keep the trajectory only every ceil(sqrt(U)) steps and re-run the steps in between, one "
               "stretch at a time, during the meta-backward (less memory, one more forward pass)");
  return s;
}

const OptionSpec<EsOptions>& EsOptions::spec() {
  static const auto s = OptionSpec<EsOptions>(kOwner)
                            .add("es.pairs", &EsOptions::pairs, "es / pes: antithetic pairs per truncation",
                                 checks::positive)
                            .add("es.sigma", &EsOptions::sigma, "es / pes: perturbation standard deviation",
                                 checks::positive);
  return s;
}

const OptionSpec<EstimatorOptions>& EstimatorOptions::spec() {
  static const auto s = OptionSpec<EstimatorOptions>(kOwner)
                            .add("estimator", &EstimatorOptions::name, estimator_help(),
                                 [](const std::string& field, const std::string& name) {
                                   HAMLET_CHECK(estimators().contains(name), field, " must be ",
                                                estimators().describe_names(), ", got '", name, "'");
                                 })
                            .include(&EstimatorOptions::bptt)
                            .include(&EstimatorOptions::es)
                            .rule(check_unread_estimator_options);
  return s;
}

const OptionSpec<MetaStepOptions>& MetaStepOptions::spec() {
  static const auto s =
      OptionSpec<MetaStepOptions>(kOwner)
          .add("meta_lr", &MetaStepOptions::lr, "Adam learning rate of the meta-optimizer", checks::positive)
          .add("clip", &MetaStepOptions::clip, "meta-gradient norm clipping (0 = off)", checks::non_negative);
  return s;
}

const OptionSpec<ValidationOptions>& ValidationOptions::spec() {
  static const auto s = OptionSpec<ValidationOptions>(kOwner)
                            .add("validation_problems", &ValidationOptions::problems,
                                 "validation problems scored after every epoch", checks::positive)
                            .add("validation_seed", &ValidationOptions::seed, "seed of the validation problems");
  return s;
}

const OptionSpec<CheckpointOptions>& CheckpointOptions::spec() {
  static const auto s =
      OptionSpec<CheckpointOptions>(kOwner)
          .add("checkpoint", &CheckpointOptions::path, "checkpoint file (written atomically; empty = none)")
          .add("checkpoint_every", &CheckpointOptions::every, "epochs between checkpoints", checks::positive)
          .add("resume", &CheckpointOptions::resume,
               "continue from --checkpoint (it must exist and have been made with the same configuration; only "
               "--epochs may grow)")
          .add("time_limit", &CheckpointOptions::time_limit,
               "wall-time budget in seconds (0 = none): stop before an epoch expected to end past it, keep the "
               "checkpoint, write no weights or run file and exit with code 3; --resume continues bitwise",
               checks::non_negative);
  return s;
}

}  // namespace hamlet::meta
