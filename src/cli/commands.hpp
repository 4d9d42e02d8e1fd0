#pragma once
// Private to the cli module: one function per subcommand, and the pieces they share.
#include <functional>
#include <string>
#include <vector>

#include "hamlet/cli/args.hpp"
#include "hamlet/eval/evaluate.hpp"
#include "hamlet/optim/optimizer.hpp"
#include "hamlet/tasks/task.hpp"

namespace hamlet::cli {

int cmd_evaluate(const std::vector<std::string>& args, const std::string& command_line);
int cmd_tune(const std::vector<std::string>& args, const std::string& command_line);
int cmd_benchmark(const std::vector<std::string>& args);
int cmd_meta_train(const std::vector<std::string>& args, const std::string& command_line);
int cmd_data(const std::vector<std::string>& args);
int cmd_list(const std::vector<std::string>& args);
int cmd_export(const std::vector<std::string>& args);
int cmd_compare(const std::vector<std::string>& args);
int cmd_select(const std::vector<std::string>& args);
int cmd_docs(const std::vector<std::string>& args);
// The Markdown that `hamlet docs` prints (docs/cli.md).
std::string cli_reference();

// The subcommands, in the order of `hamlet --help` (app.cpp): the one place a command's name is spelled.
struct Command {
  std::string name, summary;
  std::function<int(const std::vector<std::string>& args, const std::string& command_line)> run;
};
const std::vector<Command>& commands();

// Exit status of a command that stopped cleanly before its work was done and can be continued (meta-train
// --time-limit: the checkpoint holds the state, --resume continues). Errors exit with 2.
constexpr int kExitIncomplete = 3;

// `--processes=N`: runs `hamlet COMMAND ARGS --world-size=N --rank=r --rendezvous=file://...` for r = 0..N-1 on
// this machine and waits for all of them; returns 0 when every rank succeeded, kExitIncomplete when they stopped at
// --time-limit, 1 when one failed (launch.cpp).
int launch_local_ranks(const std::string& command, const std::vector<std::string>& args, int64_t processes);

// "all" -> every hand-designed optimizer; otherwise the comma-separated names (validated).
std::vector<std::string> resolve_optimizer_names(const std::string& list);
// Builds any optimizer known to the CLI from its name and options.
optim::OptimizerPtr build_optimizer(const std::string& name, const OptionMap& options);
// Task from --task and the [task] options.
tasks::TaskPtr build_task(const ParsedArgs& parsed);
// Evaluation options from --problems, --steps, --batch, --seed, --split, --device.
eval::EvaluateOptions evaluate_options(const ParsedArgs& parsed);
// Refuses (hamlet::Error naming the sizes) an evaluation of optimizer `name` that would not fit in the memory this
// run may use (--max-memory, else what the machine has left), before anything is allocated.
void check_fits_in_memory(const ParsedArgs& parsed, const tasks::Task& task, const std::string& name,
                          const eval::EvaluateOptions& options, const std::string& problems_flag);
// "a | b | c": a registry's names for help texts.
std::string join_names(const std::vector<std::string>& names);
// Help of --task, with the registered task names.
std::string task_help();
// Options shared by evaluate, tune and benchmark.
boost::program_options::options_description run_options();
// Writes `text` to `path` through a temporary file in the same directory and a rename, so a reader never sees
// half a file (hamlet::Error naming the path when it cannot be written).
void write_atomically(const std::string& path, const std::string& text);
// Current UTC time, ISO 8601.
std::string utc_now();

}  // namespace hamlet::cli
