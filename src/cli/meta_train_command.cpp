// `hamlet meta-train`: meta-trains one learned optimizer on a task; writes the run file (curve, configuration)
// and the weights file that `hamlet evaluate --optimizer.NAME.weights=PATH` loads.
#include <spdlog/spdlog.h>

#include <iostream>

#include "commands.hpp"
#include "hamlet/core/error.hpp"
#include "hamlet/core/options_json.hpp"
#include "hamlet/core/version.hpp"
#include "hamlet/dist/communicator.hpp"
#include "hamlet/interop/learned_files.hpp"
#include "hamlet/io/h5.hpp"
#include "hamlet/io/meta_train_file.hpp"
#include "hamlet/learned/registry.hpp"
#include "hamlet/meta/checkpoint.hpp"
#include "hamlet/meta/meta_train.hpp"

namespace po = boost::program_options;

namespace hamlet::cli {
namespace {

// The run file's record of a finished meta-training run.
io::MetaTrainRunRecord run_record(const std::string& name, const learned::LearnedOptimizer& optimizer,
                                  const tasks::Task& task, const meta::MetaTrainResult& result, int64_t ranks,
                                  const std::string& weights_out, const std::string& command_line,
                                  const std::string& config) {
  io::MetaTrainRunRecord run;
  run.header = {"meta-train", version(), dependency_versions(), command_line, config, utc_now(), task.name(),
                task.options()};
  run.optimizer = name;
  run.architecture = optimizer.architecture();
  run.optimizer_options = optimizer.options();
  run.num_params = optimizer.num_params();
  run.weights_file = weights_out;
  run.curve = meta::curve_to_tensor(result.curve);
  run.initial_score = result.initial_score;
  run.best_score = result.best_score;
  run.best_epoch = result.best_epoch;
  run.meta_steps = result.meta_steps;
  run.skipped_steps = result.skipped_steps;
  run.cut_trajectories = result.cut_trajectories;
  run.undefined_steps = result.undefined_steps;
  run.optimizee_steps = result.optimizee_steps;
  run.train_seconds = result.train_seconds;
  run.seconds = result.seconds;
  run.ranks = ranks;
  return run;
}

}  // namespace

int cmd_meta_train(const std::vector<std::string>& args, const std::string& command_line) {
  const meta::MetaTrainOptions d;
  po::options_description desc("hamlet meta-train");
  const std::string optimizer_help =
      "learned optimizer: " + join_names(learned::learned_names()) + " (options: --optimizer.NAME.KEY=VALUE)";
  desc.add_options()("task", po::value<std::string>()->default_value("quadratic"), task_help().c_str())(
      "optimizer", po::value<std::string>()->default_value("phnn"), optimizer_help.c_str())(
      "epochs", po::value<int64_t>()->default_value(d.epochs), "epochs")(
      "trajectories", po::value<int64_t>()->default_value(d.trajectories), "training trajectories per epoch")(
      "horizon", po::value<int64_t>()->default_value(d.horizon), "optimizee steps per trajectory T")(
      "unroll", po::value<int64_t>()->default_value(d.unroll), "truncation window U")(
      "batch", po::value<int64_t>()->default_value(d.batch), "problems per trajectory B (one tensor program)")(
      "meta-lr", po::value<double>()->default_value(d.meta_lr), "Adam learning rate of the meta-optimizer")(
      "clip", po::value<double>()->default_value(d.clip), "meta-gradient norm clipping (0 = off)")(
      "second-derivatives", po::value<bool>()->default_value(false)->implicit_value(true),
      "keep second-order terms of the optimizee gradient")(
      "recompute", po::value<bool>()->default_value(false)->implicit_value(true),
      "re-run each optimizer step during the meta-backward instead of storing its activations (less memory)")(
      "window-loss", po::value<std::string>()->default_value(d.window_loss), "optml | dm")(
      "train-tail", po::value<bool>()->default_value(false)->implicit_value(true),
      "meta-step on the partial last window too")(
      "meta-loss", po::value<std::string>()->default_value(d.meta_loss),
      "how each step's loss F enters the meta-loss: mean (F) | log (log F) | clipped (min(F, bound), non-finite = bound)")(
      "meta-loss-bound", po::value<double>()->default_value(d.meta_loss_bound),
      "bound of --meta-loss=clipped; 0 = the episode's mean start loss")(
      "reparam", po::value<double>()->default_value(d.reparam),
      "weight-reparametrisation augmentation of the training problems: every parameter tensor in units θ/s, "
      "s = 10^U(-R, R) per problem and tensor; 0 = off")(
      "explode-factor", po::value<double>()->default_value(d.explode_factor),
      "cut a trajectory whose loss exceeds this multiple of its start (0 = off)")(
      "validation-problems", po::value<int64_t>()->default_value(d.validation_problems),
      "validation problems scored after every epoch")(
      "validation-seed", po::value<int64_t>()->default_value(0), "seed of the validation problems")(
      "seed", po::value<int64_t>()->default_value(0), "seed of the training problems")(
      "checkpoint", po::value<std::string>()->default_value(""), "checkpoint file (written atomically)")(
      "checkpoint-every", po::value<int64_t>()->default_value(d.checkpoint_every), "epochs between checkpoints")(
      "resume", po::value<bool>()->default_value(false)->implicit_value(true),
      "continue from --checkpoint (it must exist and have been made with the same configuration; only --epochs "
      "may grow)")(
      "time-limit", po::value<double>()->default_value(0),
      "wall-time budget in seconds (0 = none): stop before an epoch expected to end past it, keep the checkpoint, "
      "write no weights or run file and exit with code 3; --resume continues bitwise")(
      "estimator", po::value<std::string>()->default_value(d.estimator),
      "meta-gradient estimator: bptt (truncated back-propagation) | es (antithetic ES) | pes (persistent ES)")(
      "es.pairs", po::value<int64_t>()->default_value(d.es_pairs), "es / pes: antithetic pairs per truncation")(
      "es.sigma", po::value<double>()->default_value(d.es_sigma), "es / pes: perturbation standard deviation")(
      "schedule", po::value<std::string>()->default_value(d.schedule),
      "truncation schedule: constant (episodes of --horizon steps) | log-uniform (lengths between --schedule.min "
      "and --schedule.max)")(
      "schedule.min", po::value<int64_t>()->default_value(d.schedule_min), "log-uniform schedule: shortest episode")(
      "schedule.max", po::value<int64_t>()->default_value(d.schedule_max),
      "log-uniform schedule: episode lengths < this")(
      "schedule.offset", po::value<int64_t>()->default_value(d.schedule_offset),
      "random phase of the truncation grid, drawn per episode from [0, offset) (0 = windows at 0, U, 2U, ...)")(
      "world-size", po::value<int64_t>()->default_value(1),
      "data-parallel ranks in the group (bptt splits --batch, es / pes split --es.pairs among them)")(
      "rank", po::value<int64_t>()->default_value(0),
      "this process's rank, 0 .. world-size - 1 (rank 0 alone reads and writes files: the other ranks need no "
      "--weights-out, --out or --checkpoint, and rank 0's --resume and --time-limit decide for the group)")(
      "rendezvous", po::value<std::string>()->default_value(""),
      "where the ranks meet: tcp://HOST:PORT (rank 0 listens) or file://PATH")(
      "dist-timeout", po::value<double>()->default_value(180),
      "seconds a rank waits for the others (rendezvous and every collective) before it fails")(
      "processes", po::value<int64_t>()->default_value(0),
      "launch this many local ranks (sets --world-size, --rank, --rendezvous) and wait for them")(
      "out", po::value<std::string>()->default_value(""), "HDF5 run file (curve and configuration)")(
      "weights-out", po::value<std::string>()->default_value(""),
      "file for the selected (best) weights (required; with --world-size > 1 on rank 0 only)");
  desc.add(common_options());
  ParsedArgs parsed = parse_args(args, desc, {"task", "optimizer"}, "meta-train");
  if (print_help_or_config(parsed, desc)) return 0;
  const auto& v = parsed.values;
  if (v["processes"].as<int64_t>() != 0) return launch_local_ranks("meta-train", args, v["processes"].as<int64_t>());
  apply_common_options(parsed);
  dist::DistributedOptions dist_options;
  dist_options.world_size = v["world-size"].as<int64_t>();
  dist_options.rank = v["rank"].as<int64_t>();
  dist_options.rendezvous = v["rendezvous"].as<std::string>();
  dist_options.timeout_s = v["dist-timeout"].as<double>();
  dist_options.validate();
  const bool root = dist_options.rank == 0;
  // The other ranks repeat rank 0's progress; they only report problems.
  if (!root && spdlog::get_level() < spdlog::level::warn) spdlog::set_level(spdlog::level::warn);
  const std::string name = v["optimizer"].as<std::string>();
  HAMLET_CHECK(learned::is_learned(name), "--optimizer must be a learned optimizer (phnn-paper, phnn, lstm), got '",
               name, "'");
  for (const auto& [key, value] : parsed.dynamic) {
    HAMLET_CHECK(key.rfind("optimizer.", 0) != 0 || key.rfind("optimizer." + name + ".", 0) == 0, "option --", key,
                 " is not for the optimizer being trained ('", name, "')");
  }
  meta::MetaTrainOptions o;
  o.epochs = v["epochs"].as<int64_t>();
  o.trajectories = v["trajectories"].as<int64_t>();
  o.horizon = v["horizon"].as<int64_t>();
  o.unroll = v["unroll"].as<int64_t>();
  o.batch = v["batch"].as<int64_t>();
  o.meta_lr = v["meta-lr"].as<double>();
  o.clip = v["clip"].as<double>();
  o.second_derivatives = v["second-derivatives"].as<bool>();
  o.recompute = v["recompute"].as<bool>();
  o.window_loss = v["window-loss"].as<std::string>();
  o.train_tail = v["train-tail"].as<bool>();
  o.explode_factor = v["explode-factor"].as<double>();
  o.meta_loss = v["meta-loss"].as<std::string>();
  o.meta_loss_bound = v["meta-loss-bound"].as<double>();
  o.reparam = v["reparam"].as<double>();
  o.validation_problems = v["validation-problems"].as<int64_t>();
  const int64_t vseed = v["validation-seed"].as<int64_t>(), seed = v["seed"].as<int64_t>();
  HAMLET_CHECK(vseed >= 0 && seed >= 0, "--seed and --validation-seed must be >= 0");
  o.validation_seed = static_cast<uint64_t>(vseed);
  o.seed = static_cast<uint64_t>(seed);
  o.device = v["device"].as<std::string>();
  o.checkpoint = v["checkpoint"].as<std::string>();
  o.checkpoint_every = v["checkpoint-every"].as<int64_t>();
  o.resume = v["resume"].as<bool>();
  o.time_limit = v["time-limit"].as<double>();
  o.estimator = v["estimator"].as<std::string>();
  o.es_pairs = v["es.pairs"].as<int64_t>();
  o.es_sigma = v["es.sigma"].as<double>();
  o.schedule = v["schedule"].as<std::string>();
  o.schedule_min = v["schedule.min"].as<int64_t>();
  o.schedule_max = v["schedule.max"].as<int64_t>();
  o.schedule_offset = v["schedule.offset"].as<int64_t>();
  o.world_size = dist_options.world_size;
  o.rank = dist_options.rank;
  o.validate();

  const auto optimizer = interop::make_learned(name, options_with_prefix(parsed.dynamic, "optimizer." + name));
  const auto task = build_task(parsed);
  const std::string out = v["out"].as<std::string>();
  const std::string weights_out = v["weights-out"].as<std::string>();
  HAMLET_CHECK(!root || !weights_out.empty(),
               "--weights-out is required: the file that will hold the trained weights");
  // Fail on unwritable outputs before training: open (and discard) writers for both files. Rank 0 writes them.
  std::unique_ptr<io::MetaTrainFileWriter> writer;
  if (root) {
    io::check_writable(weights_out);
    if (!out.empty()) writer = std::make_unique<io::MetaTrainFileWriter>(out);
  }

  spdlog::info("meta-training {} ({}, {} weights) on {} for {} epochs x {} trajectories, T={}, U={}, B={}", name,
               optimizer->architecture(), optimizer->num_params(), task->name(), o.epochs, o.trajectories, o.horizon,
               o.unroll, o.batch);
  const dist::CommunicatorPtr communicator = dist::connect(dist_options);
  const auto result = meta::meta_train(*optimizer, *task, o, communicator);
  if (result.termination == "time limit") {
    if (root) {
      std::cerr << "hamlet meta-train: stopped at the time limit (" << format_number(o.time_limit) << " s) after epoch "
                << result.last_epoch << " of " << o.epochs << "; the checkpoint " << o.checkpoint
                << " holds the state, rerun with --resume to continue (no weights or run file written)\n";
    }
    return kExitIncomplete;
  }
  if (!root) return 0;

  OptionMap provenance{{"task", task->name()},
                       {"task_options", options_to_json(task->options())},
                       {"meta_train", options_to_json(o.to_map())},
                       {"ranks", std::to_string(o.world_size)},
                       {"hamlet_version", version()},
                       {"command", command_line},
                       {"best_epoch", std::to_string(result.best_epoch)},
                       {"best_score", format_number(result.best_score)},
                       {"cut_trajectories", std::to_string(result.cut_trajectories)},
                       {"skipped_steps", std::to_string(result.skipped_steps)}};
  interop::save_weights(weights_out, *optimizer, provenance);
  if (writer) {
    writer->write(run_record(name, *optimizer, *task, result, o.world_size, weights_out, command_line,
                             parsed.resolved_ini));
  }
  std::cout << name << " on " << task->name() << ": validation score " << format_number(result.initial_score)
            << " (initialisation) -> " << format_number(result.best_score) << " (best, epoch " << result.best_epoch
            << "); " << result.meta_steps << " meta-steps, " << result.skipped_steps << " skipped, " << result.undefined_steps << " undefined, "
            << result.cut_trajectories << " trajectories cut, " << result.seconds << " s\n"
            << "weights: " << weights_out << (out.empty() ? "" : "\nrun: " + out) << "\n";
  return 0;
}

}  // namespace hamlet::cli
