// Resume safety and the estimators through the CLI: exit code 2 with one message naming the problem.
#include "support/catch.hpp"

#include <filesystem>

#include "hamlet/io/h5.hpp"
#include "hamlet/meta/checkpoint.hpp"
#include "support/test_support.hpp"

using namespace hamlet;

namespace {

int hamlet_cli(const std::string& args, std::string* out = nullptr) {
  return test::run_command(test::hamlet_binary() + " " + args + " 2>&1", out);
}

}  // namespace

TEST_CASE("meta-train --resume refuses a changed configuration or a missing checkpoint, and unwritable paths fail first") {
  test::TempDir dir;
  std::string msg;
  const std::string ckpt = (dir / "ckpt.h5").string(), w = (dir / "w.h5").string();
  const std::string base = "meta-train --task=quadratic --optimizer=phnn-paper --trajectories=2 --horizon=20 "
                           "--unroll=10 --validation-problems=4 --log-level=warn --weights-out=" + w;
  REQUIRE(hamlet_cli(base + " --epochs=1 --task.dim=10 --checkpoint=" + ckpt, &msg) == 0);

  CHECK(hamlet_cli(base + " --epochs=2 --task.dim=20 --checkpoint=" + ckpt + " --resume", &msg) == 2);
  CHECK_THAT(msg, Catch::Contains("task.dim is '10' in the checkpoint, '20' now"));
  CHECK(hamlet_cli(base + " --epochs=2 --task.dim=10 --meta-lr=0.02 --checkpoint=" + ckpt + " --resume", &msg) == 2);
  CHECK_THAT(msg, Catch::Contains("meta_lr is '0.01' in the checkpoint, '0.02' now"));
  CHECK(meta::load_checkpoint(ckpt).epoch == 1);  // refused runs leave the checkpoint alone

  CHECK(hamlet_cli(base + " --epochs=2 --checkpoint=" + (dir / "typo.h5").string() + " --resume", &msg) == 2);
  CHECK_THAT(msg, Catch::Contains("typo.h5") && Catch::Contains("does not exist"));

  // Only epochs may grow: this resume runs.
  REQUIRE(hamlet_cli(base + " --epochs=2 --task.dim=10 --checkpoint=" + ckpt + " --resume", &msg) == 0);
  CHECK(meta::load_checkpoint(ckpt).epoch == 2);

  // Unwritable checkpoint, weights or run file: reported at once (10,000 epochs would run for hours).
  const std::string nowhere = (dir / "missing-dir").string();
  CHECK(hamlet_cli(base + " --epochs=10000 --checkpoint=" + nowhere + "/c.h5", &msg) == 2);
  CHECK_THAT(msg, Catch::Contains("missing-dir"));
  CHECK(hamlet_cli("meta-train --epochs=10000 --weights-out=" + nowhere + "/w.h5", &msg) == 2);
  CHECK_THAT(msg, Catch::Contains("missing-dir"));
}

TEST_CASE("meta-train --estimator=es|pes with a log-uniform schedule runs from the CLI and records its options, and undefined windows are counted") {
  test::TempDir dir;
  std::string msg;
  for (const std::string est : {"es", "pes"}) {
    INFO(est);
    const std::string w = (dir / (est + ".h5")).string(), run = (dir / (est + "-run.h5")).string();
    REQUIRE(hamlet_cli("meta-train --task=quadratic --optimizer=phnn-paper --epochs=2 --trajectories=4 --batch=2 "
                       "--unroll=10 --validation-problems=8 --estimator=" + est +
                           " --es.pairs=2 --es.sigma=0.02 --schedule=log-uniform --schedule.min=20 --schedule.max=60 "
                           "--schedule.offset=10 --log-level=warn --weights-out=" + w + " --out=" + run,
                       &msg) == 0);
    io::H5Reader r(run);
    CHECK(r.read("/meta_train/curve").size(1) == 8);
    CHECK(r.attribute_int("/meta_train", "meta_steps") > 0);
    CHECK(r.attribute_int("/meta_train", "optimizee_steps") > 0);
    CHECK_THAT(io::H5Reader(w).attribute_string("/", "meta_train"),
               Catch::Contains("\"estimator\":\"" + est + "\"") && Catch::Contains("\"es.pairs\":\"2\"") &&
                   Catch::Contains("\"schedule\":\"log-uniform\""));
  }
  // A one-step window (optml loss) never reaches φ: every window is skipped and counted, none is an Adam step.
  const std::string u1 = (dir / "u1-run.h5").string();
  REQUIRE(hamlet_cli("meta-train --task=quadratic --optimizer=phnn-paper --epochs=1 --trajectories=2 --horizon=10 "
                     "--unroll=1 --validation-problems=2 --log-level=warn --weights-out=" + (dir / "u1.h5").string() +
                         " --out=" + u1, &msg) == 0);
  CHECK_THAT(msg, Catch::Contains("0 meta-steps") && Catch::Contains("20 undefined"));
  CHECK(io::H5Reader(u1).attribute_int("/meta_train", "undefined_steps") == 20);
  CHECK(io::H5Reader(u1).attribute_int("/meta_train", "meta_steps") == 0);
  CHECK(hamlet_cli("meta-train --estimator=reinforce --weights-out=" + (dir / "x.h5").string(), &msg) == 2);
  CHECK_THAT(msg, Catch::Contains("bptt, es or pes"));
}
