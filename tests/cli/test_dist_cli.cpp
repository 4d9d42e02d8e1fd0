// Data-parallel meta-training through the CLI: --processes, a rank killed with SIGKILL, resuming the group.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "hamlet/learned/registry.hpp"
#include "hamlet/meta/checkpoint.hpp"
#include "meta/meta_fixtures.hpp"
#include "support/catch.hpp"
#include "support/test_support.hpp"

extern char** environ;

using namespace hamlet;

namespace {

int hamlet_cli(const std::string& args, std::string* out = nullptr) {
  return test::run_command(test::hamlet_binary() + " " + args + " 2>&1", out);
}

std::vector<std::string> split_words(const std::string& text) {
  std::istringstream in(text);
  std::vector<std::string> out;
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

// Starts `hamlet ARGS` in the background with stdout and stderr in `log`.
pid_t spawn_hamlet(const std::string& args, const std::string& log) {
  std::vector<std::string> argv = split_words(args);
  argv.insert(argv.begin(), test::hamlet_binary());
  std::vector<char*> cargv;
  for (auto& s : argv) cargv.push_back(s.data());
  cargv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, argv[0].c_str(), &actions, nullptr, cargv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  REQUIRE(rc == 0);
  return pid;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TensorList trained_weights(const std::string& path) {
  auto opt = learned::make_learned("phnn-paper", {{"dtype", "float64"}});
  learned::load_weights(path, *opt);
  return opt->weights();
}

}  // namespace

TEST_CASE("meta-train --processes=2 gives the weights of one process with the same meta-batch (float64, 1e-10)") {
  test::TempDir dir;
  const std::string base =
      "meta-train --task=quadratic --task.dim=5 --task.dtype=float64 --optimizer=phnn-paper "
      "--optimizer.phnn-paper.dtype=float64 --epochs=2 --trajectories=2 --horizon=20 --unroll=10 --batch=2 "
      "--validation-problems=4 --log-level=warn";
  std::string msg;
  REQUIRE(hamlet_cli(base + " --weights-out=" + (dir / "one.h5").string(), &msg) == 0);
  REQUIRE(hamlet_cli(base + " --processes=2 --weights-out=" + (dir / "two.h5").string() + " --out=" +
                         (dir / "two_run.h5").string(),
                     &msg) == 0);
  const TensorList one = trained_weights((dir / "one.h5").string()), two = trained_weights((dir / "two.h5").string());
  double diff = 0;
  for (std::size_t i = 0; i < one.size(); ++i) diff = std::max(diff, test::max_abs_diff(one[i], two[i]));
  CHECK(diff < 1e-10);
  // Bad combinations are refused before anything runs.
  std::string odd = base;
  odd.replace(odd.find("--batch=2"), 9, "--batch=3");
  CHECK(hamlet_cli(odd + " --processes=2 --weights-out=" + (dir / "x.h5").string(), &msg) != 0);
  CHECK_THAT(msg, Catch::Contains("must be a multiple of the world size (2)"));
  CHECK(hamlet_cli(base + " --processes=2 --rank=1 --weights-out=" + (dir / "x.h5").string(), &msg) != 0);
  CHECK_THAT(msg, Catch::Contains("--processes sets --world-size, --rank and --rendezvous itself"));
}

TEST_CASE("meta-train: a rank killed with SIGKILL fails the other at once naming it, and the group resumes equal to an uninterrupted run") {
  test::TempDir dir;
  const std::string ckpt = (dir / "ckpt.h5").string();
  const std::string base =
      "meta-train --task=quadratic --optimizer=phnn-paper --epochs=25 --trajectories=2 --horizon=20 --unroll=10 "
      "--batch=2 --validation-problems=4 --log-level=warn --dist-timeout=60";
  const std::string group = " --world-size=2 --rendezvous=file://" + (dir / "store").string();
  const pid_t rank0 = spawn_hamlet(base + group + " --rank=0 --checkpoint=" + ckpt + " --weights-out=" +
                                       (dir / "w0.h5").string(),
                                   (dir / "rank0.log").string());
  const pid_t rank1 = spawn_hamlet(base + group + " --rank=1 --weights-out=" + (dir / "w1.h5").string(),
                                   (dir / "rank1.log").string());
  // Kill rank 1 once rank 0 has written its first checkpoint.
  const auto start = std::chrono::steady_clock::now();
  while (!std::filesystem::exists(ckpt) && std::chrono::steady_clock::now() - start < std::chrono::seconds(60)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  REQUIRE(std::filesystem::exists(ckpt));
  REQUIRE(::kill(rank1, SIGKILL) == 0);
  const auto killed = std::chrono::steady_clock::now();
  int status = 0;
  ::waitpid(rank1, &status, 0);
  ::waitpid(rank0, &status, 0);
  const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - killed).count();
  const std::string log0 = read_file((dir / "rank0.log").string());
  INFO(log0);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) != 0);
  CHECK_THAT(log0, Catch::Contains("rank 0 of 2") && Catch::Contains("rank 1 (pid " + std::to_string(rank1) +
                                                                        ") has exited"));
  CHECK(waited < 60);  // within the timeout: a dead peer is seen as a closed connection, not waited for
  const int64_t reached = meta::load_checkpoint(ckpt).epoch;
  CHECK(reached < 25);

  // The group resumes from rank 0's checkpoint and ends where an uninterrupted 2-rank run ends, bitwise.
  std::string msg;
  REQUIRE(hamlet_cli(base + " --processes=2 --resume --checkpoint=" + ckpt + " --weights-out=" +
                         (dir / "resumed.h5").string(),
                     &msg) == 0);
  REQUIRE(hamlet_cli(base + " --processes=2 --checkpoint=" + (dir / "straight.h5").string() + " --weights-out=" +
                         (dir / "straight_w.h5").string(),
                     &msg) == 0);
  const meta::Checkpoint resumed = meta::load_checkpoint(ckpt), straight = meta::load_checkpoint((dir / "straight.h5").string());
  CHECK(resumed.epoch == 25);
  CHECK(test::same_tensors(resumed.weights, straight.weights));
  CHECK(test::same_tensors(resumed.best_weights, straight.best_weights));
  CHECK(resumed.progress.best_epoch == straight.progress.best_epoch);
}
