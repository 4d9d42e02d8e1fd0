#include "hamlet/cli/app.hpp"

#include <c10/util/Exception.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <iostream>

#include "commands.hpp"
#include "hamlet/core/error.hpp"
#include "hamlet/core/runtime.hpp"
#include "hamlet/core/version.hpp"

namespace hamlet::cli {
namespace {

constexpr const char* kUsage =
    "usage: hamlet <command> [options]   (hamlet <command> --help for its options)\n"
    "\n"
    "commands:\n"
    "  evaluate    run optimizers on N paired test problems, write an HDF5 run file, print a summary table\n"
    "  tune        grid-search learning rates on validation problems, write the grid and the choice\n"
    "  meta-train  meta-train a learned optimizer (truncated BPTT, ES or PES; data-parallel ranks)\n"
    "  benchmark   steps/s of each optimizer, batched against one problem at a time\n"
    "  data        data preparation (data import-npm --src DIR --out DIR)\n"
    "  export      learning curves of a run file to CSV (mean, SE, median per method and step)\n"
    "  compare     comparison tables of run files (meta-seed-aware SEs, validation-chosen reference): md, csv, json\n"
    "  select      of meta-trained weight files, the one with the best validation score (prints its path)\n"
    "  list        list tasks and optimizers\n"
    "  version     print the version (--blas-core: only the OpenBLAS core in use, for OPENBLAS_CORETYPE)\n";

}  // namespace

int run(const std::vector<std::string>& argv) {
  if (argv.empty() || argv[0] == "help" || argv[0] == "--help" || argv[0] == "-h") {
    std::cout << kUsage;
    return argv.empty() ? 2 : 0;
  }
  const std::string command = argv[0];
  const std::vector<std::string> args(argv.begin() + 1, argv.end());
  std::string command_line = "hamlet";
  for (const auto& a : argv) command_line += " " + a;
  try {
    if (command == "evaluate") return cmd_evaluate(args, command_line);
    if (command == "tune") return cmd_tune(args, command_line);
    if (command == "benchmark") return cmd_benchmark(args);
    if (command == "meta-train") return cmd_meta_train(args, command_line);
    if (command == "data") return cmd_data(args);
    if (command == "list") return cmd_list(args);
    if (command == "export") return cmd_export(args);
    if (command == "compare") return cmd_compare(args);
    if (command == "select") return cmd_select(args);
    if (command == "version" || command == "--version") {
      const std::string blas = blas_core();
      if (args.size() == 1 && (args[0] == "--help" || args[0] == "-h")) {
        std::cout << "hamlet version: the version of hamlet and of its dependencies\n"
                     "  --blas-core   print only the OpenBLAS core in use (for OPENBLAS_CORETYPE)\n";
        return 0;
      }
      if (args.size() == 1 && args[0] == "--blas-core") {
        std::cout << blas << "\n";
        return 0;
      }
      if (!args.empty()) throw Error("version: unknown argument '" + args[0] + "'; the only one is --blas-core");
      std::cout << "hamlet " << version() << " (" << dependency_versions()
                << (blas.empty() ? "" : ", OpenBLAS core " + blas) << ")\n";
      return 0;
    }
    throw Error("unknown command '" + command + "'; valid commands: evaluate, tune, meta-train, benchmark, export, compare, select, data, list, version");
  } catch (const Error& e) {
    spdlog::error("{}", e.what());
  } catch (const c10::Error& e) {
    spdlog::error("torch error: {}", e.what_without_backtrace());
  } catch (const std::exception& e) {
    spdlog::error("{}", e.what());
  }
  return 2;
}

int main(int argc, char** argv) {
  use_best_blas_kernels(argv);
  tune_allocator();
  auto logger = spdlog::stderr_color_mt("hamlet");
  logger->set_pattern("[%H:%M:%S] %^%l%$: %v");
  spdlog::set_default_logger(logger);
  std::vector<std::string> args;
  for (int i = 1; i < argc; ++i) args.emplace_back(argv[i]);
  return run(args);
}

}  // namespace hamlet::cli
