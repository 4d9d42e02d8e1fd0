// `hamlet meta-train`: meta-trains one learned optimizer on a task; writes the run file (curve, configuration)
// and the weights file that `hamlet evaluate --optimizer.NAME.weights=PATH` loads.
#include <spdlog/spdlog.h>

#include <iostream>

#include "commands.hpp"
#include "hamlet/cli/option_flags.hpp"
#include "hamlet/core/error.hpp"
#include "hamlet/core/options_json.hpp"
#include "hamlet/core/version.hpp"
#include "hamlet/parallel/communicator.hpp"
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
  run.component_scores = meta::component_scores_to_tensor(result.curve);
  if (run.component_scores.defined()) {
    for (const auto& c : task.components()) run.component_names.push_back(c.name);
  }
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


// Every meta-training option is a flag: the parts that define the run, checkpointing and the ranks.
po::options_description meta_train_flags() {
  po::options_description desc("hamlet meta-train");
  const std::string optimizer_help =
      "learned optimizer: " + join_names(learned::learned_names()) + " (options: --optimizer.NAME.KEY=VALUE)";
  desc.add_options()("task", po::value<std::string>()->default_value("quadratic"), task_help().c_str())(
      "optimizer", po::value<std::string>()->default_value("phnn"), optimizer_help.c_str());
  add_option_flags(desc, meta::MetaTrainOptions::spec().describe());
  add_option_flags(desc, meta::CheckpointOptions::spec().describe());
  add_option_flags(desc, parallel::DistributedOptions::spec().describe());
  desc.add_options()("processes", po::value<int64_t>()->default_value(0),
                     "launch this many local ranks (sets --world-size, --rank, --rendezvous) and wait for them")(
      "out", po::value<std::string>()->default_value(""), "HDF5 run file (curve and configuration)")(
      "weights-out", po::value<std::string>()->default_value(""),
      "file for the selected (best) weights (required; with --world-size > 1 on rank 0 only)");
  desc.add(common_options());
  return desc;
}

meta::MetaTrainOptions meta_train_options(const ParsedArgs& parsed) {
  meta::MetaTrainOptions o = options_from_flags<meta::MetaTrainOptions>(parsed);
  o.checkpointing = options_from_flags<meta::CheckpointOptions>(parsed);
  o.parallel = options_from_flags<parallel::DistributedOptions>(parsed);
  o.device = parsed.values["device"].as<std::string>();
  o.validate();
  return o;
}

}  // namespace

int cmd_meta_train(const std::vector<std::string>& args, const std::string& command_line) {
  const po::options_description desc = meta_train_flags();
  ParsedArgs parsed = parse_args(args, desc, {"task", "optimizer"}, "meta-train");
  if (print_help_or_config(parsed, desc)) return 0;
  const auto& v = parsed.values;
  if (v["processes"].as<int64_t>() != 0) return launch_local_ranks("meta-train", args, v["processes"].as<int64_t>());
  apply_common_options(parsed);
  const meta::MetaTrainOptions o = meta_train_options(parsed);
  const bool root = o.parallel.rank == 0;
  // The other ranks repeat rank 0's progress; they only report problems.
  if (!root && spdlog::get_level() < spdlog::level::warn) spdlog::set_level(spdlog::level::warn);
  const std::string name = v["optimizer"].as<std::string>();
  HAMLET_CHECK(learned::is_learned(name), "--optimizer must be a learned optimizer (",
               join_names(learned::learned_names()), "), got '", name, "'");
  for (const auto& [key, value] : parsed.dynamic) {
    HAMLET_CHECK(key.rfind("optimizer.", 0) != 0 || key.rfind("optimizer." + name + ".", 0) == 0, "option --", key,
                 " is not for the optimizer being trained ('", name, "')");
  }

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

  const meta::ScheduleOptions& sched = o.schedule;
  spdlog::info("meta-training {} ({}, {} weights) on {} for {} epochs x {} trajectories, T={}, U={}, B={}", name,
               optimizer->architecture(), optimizer->num_params(), task->name(), sched.epochs, sched.trajectories,
               sched.horizon, sched.unroll, sched.batch);
  const parallel::CommunicatorPtr communicator = parallel::connect(o.parallel);
  const auto result = meta::meta_train(*optimizer, *task, o, communicator);
  if (result.termination == "time limit") {
    if (root) {
      std::cerr << "hamlet meta-train: stopped at the time limit (" << format_number(o.checkpointing.time_limit)
                << " s) after epoch " << result.last_epoch << " of " << sched.epochs << "; the checkpoint "
                << o.checkpointing.path
                << " holds the state, rerun with --resume to continue (no weights or run file written)\n";
    }
    return kExitIncomplete;
  }
  if (!root) return 0;

  OptionMap provenance{{"task", task->name()},
                       {"task_options", options_to_json(task->options())},
                       {"meta_train", options_to_json(o.to_map())},
                       {"ranks", std::to_string(o.parallel.world_size)},
                       {"hamlet_version", version()},
                       {"command", command_line},
                       {"best_epoch", std::to_string(result.best_epoch)},
                       {"best_score", format_number(result.best_score)},
                       {"cut_trajectories", std::to_string(result.cut_trajectories)},
                       {"skipped_steps", std::to_string(result.skipped_steps)}};
  interop::save_weights(weights_out, *optimizer, provenance);
  if (writer) {
    writer->write(run_record(name, *optimizer, *task, result, o.parallel.world_size, weights_out, command_line,
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
