// Fuzz target: the config-file layer of the command line, cli::parse_args with --config=FILE, against the options
// of `hamlet evaluate` (run options, tuning options, --tune, --out), then the evaluate options read from the result
// (cli::evaluate_options, the optimizer list and the per-optimizer options).
//
// Input: the bytes of one INI file; a NUL byte splits them into two files given as two --config flags (the files
// must agree on shared keys), and an input starting with "--" adds its first line as a command-line flag ahead of the
// files (one without '/', so that it names no file outside the working directory). Raw bytes are the right input: Boost's INI parser and hamlet's section and composition rules are what is
// being tested. A hamlet::Error is the expected answer to a bad file; a crash, a sanitizer report or any other
// exception type (a boost::program_options error hamlet failed to translate, boost::bad_any_cast, ...) is a finding.
#include <cstdio>
#include <string>
#include <vector>

#include "cli/commands.hpp"
#include "h5_program.hpp"
#include "hamlet/cli/args.hpp"
#include "hamlet/core/error.hpp"

using namespace hamlet;
namespace po = boost::program_options;

namespace {

std::string g_files[2];

// The options of `hamlet evaluate` (evaluate_command.cpp: run_options, tune_options, --tune, --out).
po::options_description evaluate_description() {
  po::options_description desc("hamlet evaluate");
  desc.add(cli::run_options());
  po::options_description tune("Tuning options");
  tune.add_options()("tune-problems", po::value<int64_t>()->default_value(20), "")(
      "tune-grid", po::value<std::string>()->default_value(""), "")(
      "tune-seed", po::value<int64_t>()->default_value(0), "");
  desc.add(tune);
  desc.add_options()("tune", po::value<bool>()->default_value(false)->implicit_value(true), "")(
      "out", po::value<std::string>()->default_value(""), "");
  return desc;
}

void write_all(const std::string& path, const std::string& bytes) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) std::abort();
  if (!bytes.empty() && std::fwrite(bytes.data(), 1, bytes.size(), f) != bytes.size()) std::abort();
  std::fclose(f);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  g_files[0] = fuzz::scratch_file("config", "-a.ini");
  g_files[1] = fuzz::scratch_file("config", "-b.ini");
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  static const po::options_description desc = evaluate_description();
  std::string text(reinterpret_cast<const char*>(data), size);
  // KNOWN ISSUE, skipped until cli/args.cpp works around it: Boost.Program_options 1.74 builds an error message by
  // replacing placeholders such as %value% in a loop (error_with_option_name::replace_token) that never ends when
  // the replacement contains the placeholder, so `--problems=%value%` or `problems = %value%` in a config file hangs
  // hamlet (found by this target). Remove this line once parse_args no longer calls what() on such an error.
  if (text.find('%') != std::string::npos) return 0;
  std::vector<std::string> args;
  if (text.rfind("--", 0) == 0) {
    const auto end = text.find('\n');
    const std::string flag = text.substr(0, end);
    // No '/': a flag may not name a file outside the fuzzer's working directory (--config=/dev/zero would hang).
    if (flag.find('/') == std::string::npos) args.push_back(flag);
    text = end == std::string::npos ? "" : text.substr(end + 1);
  }
  const auto nul = text.find('\0');
  write_all(g_files[0], text.substr(0, nul));
  args.push_back("--config=" + g_files[0]);
  if (nul != std::string::npos) {
    write_all(g_files[1], text.substr(nul + 1));
    args.push_back("--config=" + g_files[1]);
  }
  try {
    const cli::ParsedArgs parsed = cli::parse_args(args, desc, {"task", "optimizer"}, "evaluate");
    (void)cli::evaluate_options(parsed);
    for (const auto& name : cli::resolve_optimizer_names(parsed.values["optimizers"].as<std::string>())) {
      (void)cli::options_with_prefix(parsed.dynamic, "optimizer." + name);
    }
  } catch (const Error&) {
    if (fuzz::strict()) throw;
  }
  return 0;
}
