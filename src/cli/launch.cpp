// `--processes=N`: runs N ranks of a command on this machine, each a copy of this program with --world-size,
// --rank and a fresh file:// rendezvous, and waits for all of them.
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "commands.hpp"
#include "hamlet/core/error.hpp"

extern char** environ;

namespace hamlet::cli {
namespace {

// The command's arguments without --processes (both the --processes=N and the --processes N forms).
std::vector<std::string> without_processes(const std::vector<std::string>& args) {
  std::vector<std::string> out;
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (args[i].rfind("--processes=", 0) == 0) continue;
    if (args[i] == "--processes") {
      ++i;
      continue;
    }
    out.push_back(args[i]);
  }
  return out;
}

std::string describe_status(int status) {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return "was killed by signal " + std::to_string(WTERMSIG(status));
  return "ended with wait status " + std::to_string(status);
}

}  // namespace

int launch_local_ranks(const std::string& command, const std::vector<std::string>& args, int64_t processes) {
  HAMLET_CHECK(processes >= 2, "--processes must be >= 2 (1 process needs no launcher), got ", processes);
  for (const auto& a : args) {
    HAMLET_CHECK(a.rfind("--world-size", 0) != 0 && a.rfind("--rank", 0) != 0 && a.rfind("--rendezvous", 0) != 0,
                 "--processes sets --world-size, --rank and --rendezvous itself; remove '", a, "'");
  }
  namespace fs = std::filesystem;
  std::string tmpl = (fs::temp_directory_path() / "hamlet-ranks-XXXXXX").string();
  HAMLET_CHECK(::mkdtemp(tmpl.data()) != nullptr, "--processes: cannot create a directory under ",
               fs::temp_directory_path().string());
  const fs::path dir = tmpl;
  const std::string rendezvous = "file://" + (dir / "store").string();
  const std::vector<std::string> base = without_processes(args);

  std::vector<pid_t> pids;
  for (int64_t r = 0; r < processes; ++r) {
    std::vector<std::string> argv{"/proc/self/exe", command};
    argv.insert(argv.end(), base.begin(), base.end());
    argv.push_back("--world-size=" + std::to_string(processes));
    argv.push_back("--rank=" + std::to_string(r));
    argv.push_back("--rendezvous=" + rendezvous);
    std::vector<char*> cargv;
    for (auto& s : argv) cargv.push_back(s.data());
    cargv.push_back(nullptr);
    pid_t pid = 0;
    const int rc = ::posix_spawn(&pid, "/proc/self/exe", nullptr, nullptr, cargv.data(), environ);
    if (rc != 0) {
      for (pid_t p : pids) ::kill(p, SIGTERM);
      for (pid_t p : pids) ::waitpid(p, nullptr, 0);
      fs::remove_all(dir);
      throw Error("--processes: starting rank " + std::to_string(r) + " failed (posix_spawn error " +
                  std::to_string(rc) + ")");
    }
    pids.push_back(pid);
  }
  spdlog::info("{}: started {} local ranks (rendezvous {})", command, processes, rendezvous);

  // Wait for every rank; the first failure is reported, and the others, which then fail in their next collective,
  // are waited for too.
  int exit_code = 0;
  std::string failure;
  std::size_t remaining = pids.size();
  std::vector<bool> done(pids.size(), false);
  while (remaining > 0) {
    int status = 0;
    const pid_t pid = ::waitpid(-1, &status, 0);
    if (pid < 0) break;
    for (std::size_t r = 0; r < pids.size(); ++r) {
      if (pids[r] != pid || done[r]) continue;
      done[r] = true;
      --remaining;
      // A rank stopped by --time-limit (every rank stops after the same epoch) is not a failure.
      if (WIFEXITED(status) && WEXITSTATUS(status) == kExitIncomplete && failure.empty()) {
        exit_code = kExitIncomplete;
        continue;
      }
      const bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
      if (!ok && failure.empty()) {
        failure = "rank " + std::to_string(r) + " " + describe_status(status);
        exit_code = 1;
      }
    }
  }
  std::error_code ec;
  fs::remove_all(dir, ec);
  if (!failure.empty()) spdlog::error("{}: {} (its message is above)", command, failure);
  return exit_code;
}

}  // namespace hamlet::cli
