// Data-parallel meta-training through the CLI: --processes, a rank killed with SIGKILL, resuming the group; the
// start-up's failures (a rank that never comes, a --world-size clash, a rank started twice, a different
// configuration) and the output paths only rank 0 needs.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "hamlet/interop/learned_files.hpp"
#include "hamlet/learned/registry.hpp"
#include "hamlet/meta/checkpoint.hpp"
#include "meta/meta_fixtures.hpp"
#include "support/catch.hpp"
#include "support/sockets.hpp"
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
  interop::load_weights(path, *opt);
  return opt->weights();
}

using Clock = std::chrono::steady_clock;

// A started `hamlet` process and what it left when it ended.
struct Rank {
  pid_t pid = 0;
  std::string log;
  Clock::time_point start;
  int status = 0;
  double seconds = 0;
  std::string output;
};

Rank start_rank(const std::string& args, const std::string& log) {
  Rank r;
  r.log = log;
  r.start = Clock::now();
  r.pid = spawn_hamlet(args, log);
  return r;
}

void finish(Rank& r) {
  ::waitpid(r.pid, &r.status, 0);
  r.seconds = std::chrono::duration<double>(Clock::now() - r.start).count();
  r.output = read_file(r.log);
}

bool failed(const Rank& r) { return !WIFEXITED(r.status) || WEXITSTATUS(r.status) != 0; }

// Waits for every rank, then checks that each failed and passes `check` (a failure shows that rank's output).
template <typename Check>
void finish_failed(std::initializer_list<Rank*> ranks, Check check) {
  for (Rank* r : ranks) finish(*r);
  for (const Rank* r : ranks) {
    INFO(r->output);
    CHECK(failed(*r));
    check(*r);
  }
}

// Waits for every rank and checks that each exited with status 0; a failure shows every rank's output.
void finish_ok(std::initializer_list<Rank*> ranks) {
  std::string outputs;
  for (Rank* r : ranks) {
    finish(*r);
    outputs += r->output + "\n";
  }
  INFO(outputs);
  for (const Rank* r : ranks) {
    CHECK(WIFEXITED(r->status));
    CHECK(WEXITSTATUS(r->status) == 0);
  }
}

using test::listening;
using test::unused_port;

// One epoch of a tiny run: the start-up and the configuration check are what these tests look at.
std::string tiny(int batch = 2, int epochs = 1) {
  return "meta-train --task=quadratic --optimizer=phnn-paper --trajectories=2 --horizon=20 --unroll=10 "
         "--validation-problems=4 --log-level=warn --batch=" +
         std::to_string(batch) + " --epochs=" + std::to_string(epochs);
}
const std::string kTiny = tiny();

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

TEST_CASE("meta-train: a rank that never comes fails the lone rank within --dist-timeout, naming it and the address") {
  test::TempDir dir;
  // Runs `hamlet ARGS --rank=RANK` alone with --dist-timeout=5. It must fail within 7 s of wall time, its own start
  // (loading libtorch, about 1 s on an idle machine) included; on a loaded machine, within 5.5 s more than the same
  // command takes to fail at once (with an out-of-range --rank), measured just before.
  auto lone = [&](const std::string& args, int rank, const std::string& name) {
    const auto before = Clock::now();
    std::string msg;
    REQUIRE(hamlet_cli(args + " --rank=9", &msg) != 0);
    REQUIRE_THAT(msg, Catch::Contains("--rank must be in"));
    const double startup = std::chrono::duration<double>(Clock::now() - before).count();
    Rank r = start_rank(args + " --rank=" + std::to_string(rank), (dir / (name + ".log")).string());
    finish(r);
    const double limit = std::max(7.0, startup + 5.5);
    INFO(r.output << "a failing start took " << startup << " s; limit " << limit << " s");
    CHECK(failed(r));
    CHECK(r.seconds >= 4.9);
    CHECK(r.seconds <= limit);
    return r.output;
  };
  // Rank 0 alone (it hosts the TCP store), rank 1 alone (nothing listens at its address), rank 1 of 3 alone at a
  // file:// store.
  const std::string at0 = "tcp://127.0.0.1:" + std::to_string(unused_port());
  const std::string at1 = "tcp://127.0.0.1:" + std::to_string(unused_port());
  const std::string file = "file://" + (dir / "store").string();
  const std::string out0 = lone(kTiny + " --dist-timeout=5 --world-size=2 --rendezvous=" + at0 + " --weights-out=" +
                                    (dir / "w.h5").string(),
                                0, "rank0");
  CHECK_THAT(out0, Catch::Contains("rank 0 of 2: rank 1 never arrived at " + at0) &&
                       Catch::Contains("--dist-timeout of 5 s"));
  const std::string out1 = lone(kTiny + " --dist-timeout=5 --world-size=2 --rendezvous=" + at1, 1, "rank1");
  CHECK_THAT(out1, Catch::Contains("rank 1 of 2: rank 0 never arrived at " + at1) &&
                       Catch::Contains("--dist-timeout of 5 s"));
  const std::string out2 = lone(tiny(3) + " --dist-timeout=5 --world-size=3 --rendezvous=" + file, 1, "file");
  CHECK_THAT(out2, Catch::Contains("rank 1 of 3: ranks 0, 2 never arrived at " + file) &&
                       Catch::Contains("--dist-timeout of 5 s"));
}

TEST_CASE("meta-train: ranks started with different --world-size fail at once with a sentence naming both") {
  test::TempDir dir;
  const std::string at = "tcp://127.0.0.1:" + std::to_string(unused_port());
  const std::string common = tiny(6) + " --dist-timeout=60 --rendezvous=" + at;
  Rank r0 = start_rank(common + " --world-size=2 --rank=0 --weights-out=" + (dir / "w.h5").string(),
                       (dir / "rank0.log").string());
  Rank r1 = start_rank(common + " --world-size=3 --rank=1", (dir / "rank1.log").string());
  finish_failed({&r0, &r1}, [](const Rank& r) { CHECK(r.seconds < 10); });  // not the 60 s timeout
  CHECK_THAT(r0.output,
             Catch::Contains("rank 1 (pid " + std::to_string(r1.pid)) &&
                 Catch::Contains("was started with --world-size=3, rank 0 (this process) with --world-size=2"));
  CHECK_THAT(r1.output,
             Catch::Contains("rank 0 (pid " + std::to_string(r0.pid)) &&
                 Catch::Contains("was started with --world-size=2, rank 1 (this process) with --world-size=3"));
  CHECK_THAT(r1.output, !Catch::Contains("sizeof(impl_)"));
}

TEST_CASE("meta-train: a second rank 0, or a second rank 1, is refused at once with a sentence") {
  test::TempDir dir;
  const int port = unused_port();
  const std::string where = "127.0.0.1:" + std::to_string(port);
  // A group of 3 that cannot complete (no rank 2), so the clash is inside it whatever the order of arrival.
  const std::string common = tiny(6) + " --dist-timeout=60 --world-size=3 --rendezvous=tcp://" + where;
  Rank first =
      start_rank(common + " --rank=0 --weights-out=" + (dir / "w0.h5").string(), (dir / "first.log").string());
  const auto start = Clock::now();
  while (!listening(port) && Clock::now() - start < std::chrono::seconds(30)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  REQUIRE(listening(port));
  Rank second = start_rank(common + " --rank=0 --weights-out=" + (dir / "w1.h5").string(),
                           (dir / "second.log").string());
  finish(second);
  INFO(second.output);
  CHECK(failed(second));
  CHECK_THAT(second.output, Catch::Contains("rank 0 of 3: cannot host the rendezvous tcp://" + where) &&
                                Catch::Contains("another process already listens on " + where) &&
                                Catch::Contains("another rank 0, or another run"));
  CHECK(second.seconds < 5);
  // Two rank 1s join the first rank 0: all three fail at once, naming rank 1 and both its processes.
  Rank a = start_rank(common + " --rank=1", (dir / "a.log").string());
  Rank b = start_rank(common + " --rank=1", (dir / "b.log").string());
  finish_failed({&first, &a, &b}, [&](const Rank& r) {
    CHECK_THAT(r.output, Catch::Contains("rank 1 was started twice at tcp://" + where) &&
                             Catch::Contains("(pid " + std::to_string(a.pid)) &&
                             Catch::Contains("(pid " + std::to_string(b.pid)));
  });
  CHECK(a.seconds < 10);
  CHECK(b.seconds < 10);
  CHECK(first.seconds < 30);
}

TEST_CASE("meta-train: on a configuration mismatch every rank, rank 0 too, names the first differing key") {
  test::TempDir dir;
  const std::string common = kTiny + " --dist-timeout=60 --world-size=2 --rendezvous=file://" + (dir / "s").string();
  Rank r0 = start_rank(common + " --rank=0 --meta-lr=0.001 --weights-out=" + (dir / "w.h5").string(),
                       (dir / "rank0.log").string());
  Rank r1 = start_rank(common + " --rank=1 --meta-lr=0.002", (dir / "rank1.log").string());
  finish_failed({&r0, &r1}, [](const Rank& r) {
    CHECK_THAT(r.output, Catch::Contains("rank(s) 1 run a different meta-training configuration from rank 0: "
                                         "meta_lr is '0.002' on rank 1, '0.001' on rank 0"));
  });
  CHECK_THAT(r0.output, Catch::Contains("rank 0: rank(s) 1"));
}

TEST_CASE("meta-train: ranks other than 0 need no --weights-out, --out or --checkpoint") {
  test::TempDir dir;
  const std::string common = tiny(2, 2) + " --dist-timeout=60 --world-size=2 --rendezvous=file://" +
                             (dir / "s").string();
  // Rank 1 is given --resume and --time-limit too: rank 0's decide, and rank 1 needs no checkpoint for them.
  Rank r0 = start_rank(common + " --rank=0 --weights-out=" + (dir / "w.h5").string() + " --out=" +
                           (dir / "run.h5").string() + " --checkpoint=" + (dir / "ckpt.h5").string(),
                       (dir / "rank0.log").string());
  Rank r1 = start_rank(common + " --rank=1 --time-limit=1000", (dir / "rank1.log").string());
  finish_ok({&r0, &r1});
  CHECK(std::filesystem::exists(dir / "w.h5"));
  CHECK(std::filesystem::exists(dir / "run.h5"));
  CHECK(meta::load_checkpoint((dir / "ckpt.h5").string()).epoch == 2);
  // A resumed group: rank 1 gets --resume without --checkpoint.
  const std::string group = tiny(2, 3) + " --dist-timeout=60 --world-size=2 --rendezvous=file://" +
                            (dir / "s2").string();
  Rank s0 = start_rank(group + " --rank=0 --resume --checkpoint=" + (dir / "ckpt.h5").string() +
                           " --weights-out=" + (dir / "w2.h5").string(),
                       (dir / "resume0.log").string());
  Rank s1 = start_rank(group + " --rank=1 --resume", (dir / "resume1.log").string());
  finish_ok({&s0, &s1});
  CHECK(meta::load_checkpoint((dir / "ckpt.h5").string()).epoch == 3);
  // Rank 0 still needs its path.
  std::string msg;
  CHECK(hamlet_cli(kTiny, &msg) != 0);
  CHECK_THAT(msg, Catch::Contains("--weights-out is required"));
}
