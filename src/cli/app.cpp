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

int cmd_version(const std::vector<std::string>& args) {
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

// Commands that do not record their command line.
template <int (*Run)(const std::vector<std::string>&)>
int plain(const std::vector<std::string>& args, const std::string&) {
  return Run(args);
}

std::string usage() {
  std::string out = "usage: hamlet <command> [options]   (hamlet <command> --help for its options)\n\ncommands:\n";
  for (const auto& c : commands()) {
    out += "  " + c.name + std::string(c.name.size() < 12 ? 12 - c.name.size() : 1, ' ') + c.summary + "\n";
  }
  return out;
}

}  // namespace

const std::vector<Command>& commands() {
  static const std::vector<Command> table = {
      {"evaluate", "run optimizers on N paired test problems, write an HDF5 run file, print a summary table",
       cmd_evaluate},
      {"tune", "grid-search learning rates on validation problems, write the grid and the choice", cmd_tune},
      {"meta-train", "meta-train a learned optimizer (truncated BPTT, ES or PES; data-parallel ranks)", cmd_meta_train},
      {"benchmark", "steps/s of each optimizer, batched against one problem at a time", plain<cmd_benchmark>},
      {"data", "data preparation (data import-npm --src DIR --out DIR)", plain<cmd_data>},
      {"export", "learning curves of a run file to CSV (mean, SE, median per method and step)", plain<cmd_export>},
      {"compare",
       "comparison tables of run files (meta-seed-aware SEs, validation-chosen reference): md, csv, json",
       plain<cmd_compare>},
      {"select", "of meta-trained weight files, the one with the best validation score (prints its path)",
       plain<cmd_select>},
      {"list", "list tasks, optimizers, estimators and datasets", plain<cmd_list>},
      {"docs", "print the command-line reference (docs/cli.md) generated from the registries and options",
       plain<cmd_docs>},
      {"version", "print the version (--blas-core: only the OpenBLAS core in use, for OPENBLAS_CORETYPE)",
       [](const std::vector<std::string>& args, const std::string&) { return cmd_version(args); }},
  };
  return table;
}

int run(const std::vector<std::string>& argv) {
  if (argv.empty() || argv[0] == "help" || argv[0] == "--help" || argv[0] == "-h") {
    std::cout << usage();
    return argv.empty() ? 2 : 0;
  }
  const std::string command = argv[0] == "--version" ? "version" : argv[0];
  const std::vector<std::string> args(argv.begin() + 1, argv.end());
  std::string command_line = "hamlet";
  for (const auto& a : argv) command_line += " " + a;
  try {
    for (const auto& c : commands()) {
      if (c.name == command) return c.run(args, command_line);
    }
    std::string valid;
    for (const auto& c : commands()) valid += (valid.empty() ? "" : ", ") + c.name;
    throw Error("unknown command '" + command + "'; valid commands: " + valid);
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
