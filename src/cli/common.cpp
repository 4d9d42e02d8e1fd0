#include <unistd.h>

#include <cmath>
#include <ctime>
#include <filesystem>
#include <fstream>

#include "commands.hpp"
#include "hamlet/cli/option_flags.hpp"
#include "hamlet/core/error.hpp"
#include "hamlet/core/output_file.hpp"
#include "hamlet/core/runtime.hpp"
#include "hamlet/interop/learned_files.hpp"
#include "hamlet/learned/registry.hpp"
#include "hamlet/optim/registry.hpp"
#include "hamlet/tasks/registry.hpp"

namespace po = boost::program_options;

namespace hamlet::cli {

std::vector<std::string> resolve_optimizer_names(const std::string& list) {
  if (list == "all") return optim::hand_designed_names();
  const auto names = split_list(list);
  HAMLET_CHECK(!names.empty(), "--optimizers is empty; give a comma-separated list or 'all'");
  // A run file holds one group per method: a name given twice would run twice and then fail at the write.
  for (std::size_t i = 0; i < names.size(); ++i) {
    for (std::size_t j = 0; j < i; ++j) {
      HAMLET_CHECK(names[i] != names[j], "--optimizers names '", names[i], "' twice; give each optimizer once");
    }
  }
  return names;
}

optim::OptimizerPtr build_optimizer(const std::string& name, const OptionMap& options) {
  return interop::make_optimizer(name, options);
}

tasks::TaskPtr build_task(const ParsedArgs& parsed) {
  return tasks::make_task(parsed.values["task"].as<std::string>(), options_with_prefix(parsed.dynamic, "task"));
}

eval::EvaluateOptions evaluate_options(const ParsedArgs& parsed) {
  eval::EvaluateOptions o = options_from_flags<eval::EvaluateOptions>(parsed);
  o.device = parsed.values["device"].as<std::string>();
  o.validate();
  return o;
}

std::string join_names(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : " | ") + n;
  return out;
}

std::string task_help() {
  return "task: " + join_names(tasks::task_names()) +
         " (options: --task.KEY=VALUE, e.g. --task.dim=10, --task.activation=relu)";
}

po::options_description run_options() {
  po::options_description desc("Run options");
  const std::string optimizers_help = "comma-separated optimizers or 'all' (the hand-designed ones): " +
                                      join_names(optim::hand_designed_names()) + ", or learned: " +
                                      join_names(learned::learned_names()) +
                                      " (options: --optimizer.NAME.KEY=VALUE, e.g. --optimizer.adam.lr=0.1)";
  desc.add_options()("task", po::value<std::string>()->default_value("quadratic"), task_help().c_str())(
      "optimizers", po::value<std::string>()->default_value("all"), optimizers_help.c_str())(
      "max-memory", po::value<double>()->default_value(0),
      "GiB a run may hold; a run estimated to need more is refused before it starts (0 = what the machine has "
      "left: MemAvailable, the cgroup's limit, ulimit -v)");
  add_option_flags(desc, eval::EvaluateOptions::spec().describe());
  desc.add(common_options());
  return desc;
}

void check_fits_in_memory(const ParsedArgs& parsed, const tasks::Task& task, const std::string& name,
                          const eval::EvaluateOptions& options, const std::string& problems_flag) {
  const double max_gib = parsed.values["max-memory"].as<double>();
  HAMLET_CHECK(max_gib >= 0 && std::isfinite(max_gib), "--max-memory must be >= 0 GiB, got ", max_gib);
  const double limit = max_gib > 0 ? max_gib * 1024 * 1024 * 1024 : available_memory_bytes();
  const auto optimizer = build_optimizer(name, options_with_prefix(parsed.dynamic, "optimizer." + name));
  const eval::MemoryEstimate e = eval::estimate_memory(task, *optimizer, options);
  const auto gib = [](double bytes) { return format_number(std::round(bytes / (1024.0 * 1024 * 1024) * 100) / 100); };
  HAMLET_CHECK(e.total() <= limit, problems_flag, "=", options.problems, " x --steps=", options.steps, " of ", name,
               " on ", task.name(), " needs about ", gib(e.total()), " GiB (", e.describe(), "), more than the ",
               gib(limit), " GiB this run may use (", max_gib > 0 ? "--max-memory" : available_memory_source(),
               "); use fewer problems or steps, or a smaller --batch");
}

std::string utc_now() {
  const std::time_t now = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  return buf;
}

void write_atomically(const std::string& path, const std::string& text) { write_text_atomically(path, text, "--out"); }

}  // namespace hamlet::cli
