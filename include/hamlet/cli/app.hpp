#pragma once
// The hamlet command-line tool.
//
//   hamlet <command> [options]        commands: evaluate, tune, benchmark, data, list, help
//
// Every option can be given as a flag or in an INI file passed with --config (flags win): a flag --name=value is
// the INI line "name = value", and a flag --section.key=value is the line "key = value" under "[section]".
// Task options live under [task] (--task.dim=20), optimizer options under [optimizer.NAME]
// (--optimizer.adam.lr=0.1). Any error prints one message naming what was wrong and exits with code 2; output
// files are written under a temporary name and renamed only when complete.
#include <string>
#include <vector>

namespace hamlet::cli {

// Runs the tool; returns the process exit code.
int main(int argc, char** argv);
int run(const std::vector<std::string>& args);

}  // namespace hamlet::cli
