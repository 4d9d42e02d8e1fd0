// `hamlet evaluate` and `hamlet tune`: both resolve the task and the optimizers the same way; evaluate runs the
// (optionally tuned) optimizers on test problems, tune stops after choosing the learning rates.
#include <spdlog/spdlog.h>

#include <iostream>

#include "commands.hpp"
#include "hamlet/core/error.hpp"
#include "hamlet/core/options_json.hpp"
#include "hamlet/core/version.hpp"
#include "hamlet/eval/report.hpp"
#include "hamlet/io/run_file.hpp"
#include "hamlet/learned/registry.hpp"

namespace po = boost::program_options;

namespace hamlet::cli {
namespace {

po::options_description tune_options() {
  po::options_description desc("Tuning options");
  desc.add_options()("tune-problems", po::value<int64_t>()->default_value(20),
                     "validation problems per learning rate")(
      "tune-grid", po::value<std::string>()->default_value(""),
      "comma-separated learning rates (default 1,0.3,0.1,...,1e-5); for learned optimizers output scales out_mul "
      "(default: their own out_mul times 10,3,1,0.3,0.1)")(
      "tune-seed", po::value<int64_t>()->default_value(0), "seed of the validation problems");
  return desc;
}

std::vector<double> parse_grid(const std::string& text) {
  if (text.empty()) return eval::default_lr_grid();
  std::vector<double> grid;
  OptionMap holder;
  for (const auto& item : split_list(text)) {
    holder["tune-grid"] = item;
    double v = 0;
    take_option(holder, "--tune-grid", "tune-grid", v);
    check_positive("--tune-grid entry", v);
    grid.push_back(v);
  }
  return grid;
}

// A learned optimizer run without a weight file (allowed, e.g. to see what meta-training starts from).
bool random_init(const std::string& name, const OptionMap& options) {
  return learned::is_learned(name) && (!options.count("weights") || options.at("weights").empty());
}

struct Prepared {
  ParsedArgs parsed;
  tasks::TaskPtr task;
  std::vector<std::string> names;
  eval::EvaluateOptions eval_options;
  std::string out;
};

Prepared prepare(const std::vector<std::string>& args, po::options_description& desc, const std::string& command) {
  Prepared p;
  p.parsed = parse_args(args, desc, {"task", "optimizer"}, command);
  if (p.parsed.help || p.parsed.print_config) return p;
  apply_common_options(p.parsed);
  p.out = p.parsed.values["out"].as<std::string>();
  p.eval_options = evaluate_options(p.parsed);
  p.names = resolve_optimizer_names(p.parsed.values["optimizers"].as<std::string>());
  // Reject options for optimizers that are not run: they are almost certainly a typo.
  for (const auto& [key, value] : p.parsed.dynamic) {
    if (key.rfind("optimizer.", 0) != 0) continue;
    HAMLET_CHECK(key.find('.', 10) != std::string::npos, "option --", key, " names no optimizer; write ",
                 "--optimizer.NAME.KEY=VALUE, e.g. --optimizer.", p.names.front(), ".", key.substr(10));
    const std::string name = key.substr(10, key.find('.', 10) - 10);
    HAMLET_CHECK(std::find(p.names.begin(), p.names.end(), name) != p.names.end(), "option --", key,
                 " is for optimizer '", name, "', which is not in --optimizers");
  }
  // Build every optimizer once up front so a bad name or option fails before any work is done.
  for (const auto& name : p.names) {
    const OptionMap options = options_with_prefix(p.parsed.dynamic, "optimizer." + name);
    build_optimizer(name, options);
    if (random_init(name, options)) {
      spdlog::warn("{} has no weights (--optimizer.{}.weights=FILE): it runs its random initialisation, which says "
                   "nothing about a trained optimizer; the run file marks it random_init",
                   name, name);
    }
  }
  p.task = build_task(p.parsed);
  // Oversized runs are refused here, not by a bad_alloc (or worse) minutes later.
  eval::EvaluateOptions tuning = p.eval_options;
  tuning.problems = p.parsed.values["tune-problems"].as<int64_t>();
  tuning.split = tasks::Split::kValidation;
  check_positive("--tune-problems", tuning.problems);
  for (const auto& name : p.names) {
    check_fits_in_memory(p.parsed, *p.task, name, p.eval_options, "--problems");
    if (command == "tune" || (p.parsed.values.count("tune") && p.parsed.values["tune"].as<bool>())) {
      check_fits_in_memory(p.parsed, *p.task, name, tuning, "--tune-problems");
    }
  }
  return p;
}

// Relative grid for a learned optimizer's output scale: around the value it was trained with, largest first like
// the learning-rate grid (ties keep the first).
const std::vector<double> kLearnedScaleFactors = {10, 3, 1, 0.3, 0.1};

// Tunes the learning rate of `name` on validation problems; for a learned optimizer its output scale out_mul, the
// knob that plays the learning rate's role (its learning_rate()).
eval::TuneResult tune_one(const Prepared& p, const std::string& name) {
  const OptionMap base = options_with_prefix(p.parsed.dynamic, "optimizer." + name);
  const bool learned = learned::is_learned(name);
  const std::string knob = learned ? "out_mul" : "lr";
  eval::EvaluateOptions opts = p.eval_options;
  opts.split = tasks::Split::kValidation;
  opts.problems = p.parsed.values["tune-problems"].as<int64_t>();
  opts.seed = static_cast<uint64_t>(p.parsed.values["tune-seed"].as<int64_t>());
  opts.progress = false;
  const std::string grid_text = p.parsed.values["tune-grid"].as<std::string>();
  std::vector<double> grid = parse_grid(grid_text);
  if (learned && grid_text.empty()) {
    const double trained = build_optimizer(name, base)->learning_rate();
    grid.clear();
    for (double f : kLearnedScaleFactors) grid.push_back(f * trained);
  }
  spdlog::info("tuning {} of {} over {} values on {} validation problems", knob, name, grid.size(), opts.problems);
  auto result = eval::tune_learning_rate(
      *p.task,
      [&](double lr) {
        OptionMap o = base;
        o[knob] = format_number(lr);
        return build_optimizer(name, o);
      },
      grid, opts);
  spdlog::info("{}: best {} {} (validation score {:.4g})", name, knob, format_number(result.best_lr), result.best_score);
  return result;
}

// The run file's record of what was run; the methods are added by the command.
io::RunRecord run_record(const Prepared& p, const std::string& command_line, const std::string& kind) {
  io::RunRecord run;
  run.header.kind = kind;
  run.header.hamlet_version = version();
  run.header.dependencies = dependency_versions();
  run.header.command = command_line;
  run.header.config = p.parsed.resolved_ini;
  run.header.created_utc = utc_now();
  run.header.task = p.task->name();
  run.header.task_options = p.task->options();
  run.split = tasks::split_name(p.eval_options.split);
  run.seed = static_cast<int64_t>(p.eval_options.seed);
  run.problems = p.eval_options.problems;
  run.steps = p.eval_options.steps;
  run.device = p.eval_options.device;
  return run;
}

}  // namespace

int cmd_evaluate(const std::vector<std::string>& args, const std::string& command_line) {
  po::options_description desc("hamlet evaluate");
  desc.add(run_options()).add(tune_options());
  desc.add_options()("tune", po::value<bool>()->default_value(false)->implicit_value(true),
                     "tune each learning rate on validation problems first")(
      "out", po::value<std::string>()->default_value(""), "HDF5 run file to write (none if empty)");
  Prepared p = prepare(args, desc, "evaluate");
  if (print_help_or_config(p.parsed, desc)) return 0;
  // Open the output first: an unwritable path should fail before minutes of work.
  std::unique_ptr<io::RunFileWriter> writer;
  if (!p.out.empty()) writer = std::make_unique<io::RunFileWriter>(p.out);
  const bool tune = p.parsed.values["tune"].as<bool>();

  std::vector<eval::MethodResult> results;
  for (const auto& name : p.names) {
    eval::MethodResult r;
    r.name = name;
    OptionMap opts = options_with_prefix(p.parsed.dynamic, "optimizer." + name);
    if (tune) {
      r.tuning = tune_one(p, name);
      opts[learned::is_learned(name) ? "out_mul" : "lr"] = format_number(r.tuning->best_lr);
    }
    const auto optimizer = build_optimizer(name, opts);
    r.options = optimizer->options();
    r.trajectory = eval::evaluate(*p.task, *optimizer, p.eval_options);
    r.summary = eval::summarize(r.trajectory);
    spdlog::info("{}: final loss {:.4g} ± {:.2g} ({:.2f} s)", name, r.summary.final_mean, r.summary.final_se,
                 r.trajectory.seconds);
    results.push_back(std::move(r));
  }
  const std::string table = eval::summary_table(results);
  if (writer) {
    io::RunRecord run = run_record(p, command_line, "evaluate");
    run.tuned = tune;
    run.summary_table = table;
    for (const auto& r : results) {
      run.methods.push_back(eval::to_record(r));
      run.methods.back().random_init = random_init(r.name, options_with_prefix(p.parsed.dynamic, "optimizer." + r.name));
    }
    writer->write(run);
  }
  std::cout << "\n" << p.task->name() << " (" << format_options(p.task->options()) << "), "
            << p.eval_options.problems << " " << tasks::split_name(p.eval_options.split) << " problems, "
            << p.eval_options.steps << " steps; final = loss at the last logged step\n\n"
            << table;
  if (writer) std::cout << "\nwrote " << p.out << "\n";
  return 0;
}

int cmd_tune(const std::vector<std::string>& args, const std::string& command_line) {
  po::options_description desc("hamlet tune");
  desc.add(run_options()).add(tune_options());
  desc.add_options()("out", po::value<std::string>()->default_value(""), "HDF5 file for the grids and choices");
  Prepared p = prepare(args, desc, "tune");
  if (print_help_or_config(p.parsed, desc)) return 0;
  std::unique_ptr<io::RunFileWriter> writer;
  if (!p.out.empty()) writer = std::make_unique<io::RunFileWriter>(p.out);
  std::cout << "| method | best lr | validation score |\n|---|---|---|\n";
  std::vector<std::pair<std::string, eval::TuneResult>> tuned;
  for (const auto& name : p.names) {
    auto r = tune_one(p, name);
    std::cout << "| " << name << " | " << format_number(r.best_lr) << " | " << r.best_score << " |\n";
    tuned.emplace_back(name, std::move(r));
  }
  if (writer) {
    io::RunRecord run = run_record(p, command_line, "tune");
    run.split = "validation";
    run.problems = p.parsed.values["tune-problems"].as<int64_t>();
    run.seed = p.parsed.values["tune-seed"].as<int64_t>();
    for (const auto& [name, r] : tuned) {
      io::MethodRecord m;
      m.name = name;
      m.tune = eval::to_record(r);
      run.methods.push_back(std::move(m));
    }
    writer->write(run);
    std::cout << "\nwrote " << p.out << "\n";
  }
  return 0;
}

}  // namespace hamlet::cli
