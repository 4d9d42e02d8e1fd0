// End-to-end meta-training from the CLI: train, evaluate with the trained weights, kill and resume.
#include "support/catch.hpp"

#include <filesystem>
#include <fstream>
#include <iterator>

#include "hamlet/io/h5.hpp"
#include "hamlet/meta/checkpoint.hpp"
#include "support/test_support.hpp"

using namespace hamlet;

namespace {

int hamlet_cli(const std::string& args, std::string* out = nullptr) {
  return test::run_command(test::hamlet_binary() + " " + args, out);
}

bool same(const TensorList& a, const TensorList& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (!at::equal(a[i], b[i])) return false;
  }
  return true;
}

}  // namespace

TEST_CASE("meta-train then evaluate: every learned optimizer beats its untrained initialisation") {
  test::TempDir dir;
  std::string msg;
  for (const std::string name : {"phnn-paper", "phnn", "lstm"}) {
    INFO(name);
    const std::string weights = (dir / (name + ".h5")).string(), run = (dir / (name + "-run.h5")).string();
    const std::string lr = name == "lstm" ? "0.003" : "0.01";
    REQUIRE(hamlet_cli("meta-train --task=quadratic --optimizer=" + name + " --epochs=3 --trajectories=10 --batch=4 " +
                           "--unroll=" + (name == "lstm" ? "20" : "15") + " --meta-lr=" + lr +
                           " --validation-problems=20 --weights-out=" + weights + " --out=" + run +
                           (name == "lstm" ? " --recompute" : ""),
                       &msg) == 0);
    io::H5Reader r(run);
    CHECK(r.read("/meta_train/curve").size(0) == 3);
    CHECK(r.attribute_double("/meta_train", "best_score") < r.attribute_double("/meta_train", "initial_score"));
    io::H5Reader w(weights);
    CHECK(w.attribute_string("/", "task") == "quadratic");
    // The run's counters travel with the weights, so a comparison table can show them.
    CHECK(w.attribute_string("/", "cut_trajectories") ==
          std::to_string(r.attribute_int("/meta_train", "cut_trajectories")));
    CHECK(w.attribute_string("/", "skipped_steps") == std::to_string(r.attribute_int("/meta_train", "skipped_steps")));
    // The LSTM trains with per-step recomputation, recorded with the other meta-training options.
    CHECK_THAT(w.attribute_string("/", "meta_train"),
               Catch::Contains(name == "lstm" ? "\"recompute\":\"true\"" : "\"recompute\":\"false\""));

    const std::string trained = (dir / (name + "-eval.h5")).string(), untrained = (dir / (name + "-init.h5")).string();
    REQUIRE(hamlet_cli("evaluate --optimizers=" + name + " --optimizer." + name + ".weights=" + weights +
                           " --problems=50 --out=" + trained, &msg) == 0);
    REQUIRE(hamlet_cli("evaluate --optimizers=" + name + " --problems=50 --out=" + untrained, &msg) == 0);
    const double t = io::H5Reader(trained).attribute_double("/methods/" + name, "mean_over_steps");
    const double u = io::H5Reader(untrained).attribute_double("/methods/" + name, "mean_over_steps");
    CHECK(t < 0.8 * u);
  }
  // A weights file loaded into another architecture is a clear error.
  CHECK(hamlet_cli("evaluate --optimizers=lstm --optimizer.lstm.weights=" + (dir / "phnn.h5").string() +
                       " --problems=2 --steps=2", &msg) == 2);
  CHECK_THAT(msg, Catch::Contains("phnn.h5"));
}

TEST_CASE("a meta-training run killed with SIGKILL, or stopped by --time-limit, and resumed ends bitwise equal to an uninterrupted run") {
  test::TempDir dir;
  std::string msg;
  const std::string common = test::hamlet_binary() +
                             " meta-train --task=quadratic --optimizer=phnn-paper --epochs=6 --trajectories=20 "
                             "--validation-problems=50 --threads=1 --log-level=warn";
  const std::string a = (dir / "a.h5").string(), b = (dir / "b.h5").string();
  REQUIRE(test::run_command(common + " --checkpoint=" + a + " --weights-out=" + (dir / "wa.h5").string(), &msg) == 0);

  // Start the same run, kill it as soon as its first checkpoint exists, then resume.
  const std::string run_b = common + " --checkpoint=" + b + " --weights-out=" + (dir / "wb.h5").string();
  REQUIRE(test::run_command("bash -c '" + run_b + " & pid=$!; for i in $(seq 1 3000); do [ -f " + b +
                                " ] && break; sleep 0.005; done; kill -9 $pid; wait $pid; true'",
                            &msg) == 0);
  REQUIRE(std::filesystem::exists(b));
  const auto killed = meta::load_checkpoint(b);
  INFO("killed after epoch " << killed.epoch);
  CHECK(killed.epoch < 6);
  CHECK_FALSE(std::filesystem::exists(dir / "wb.h5"));
  REQUIRE(test::run_command(run_b + " --resume", &msg) == 0);

  const auto ca = meta::load_checkpoint(a), cb = meta::load_checkpoint(b);
  CHECK(ca.epoch == 6);
  CHECK(cb.epoch == 6);
  CHECK(same(ca.weights, cb.weights));
  CHECK(same(ca.best_weights, cb.best_weights));
  CHECK(ca.meta_state.step == cb.meta_state.step);
  for (const auto& [name, list] : ca.meta_state.slots) CHECK(same(list, cb.meta_state.slots.at(name)));
  const at::Tensor xa = meta::curve_to_tensor(ca.progress.curve), xb = meta::curve_to_tensor(cb.progress.curve);
  CHECK(at::equal(xa.narrow(1, 0, 6), xb.narrow(1, 0, 6)));  // all columns but wall time
  // The weights files written at the end are identical too.
  io::H5Reader wa((dir / "wa.h5").string()), wb((dir / "wb.h5").string());
  for (const auto& n : wa.children("/weights")) CHECK(at::equal(wa.read("/weights/" + n), wb.read("/weights/" + n)));

  // --time-limit: stops after the first epoch with exit code 3, keeps the checkpoint and writes no weights; --resume
  // ends where the uninterrupted run ended.
  const std::string c = (dir / "c.h5").string(), wc = (dir / "wc.h5").string();
  const std::string run_c = common + " --checkpoint=" + c + " --weights-out=" + wc + " --out=" + (dir / "rc.h5").string();
  CHECK(test::run_command(run_c + " --time-limit=0.000001", &msg) == 3);
  CHECK_THAT(msg, Catch::Contains("time limit") && Catch::Contains("after epoch 1 of 6") && Catch::Contains("--resume"));
  CHECK(meta::load_checkpoint(c).epoch == 1);
  CHECK_FALSE(std::filesystem::exists(wc));
  CHECK_FALSE(std::filesystem::exists(dir / "rc.h5"));
  REQUIRE(test::run_command(run_c + " --resume", &msg) == 0);
  const auto cc = meta::load_checkpoint(c);
  CHECK(cc.epoch == 6);
  CHECK(same(ca.weights, cc.weights));
  CHECK(same(ca.best_weights, cc.best_weights));
  io::H5Reader wcr(wc);
  for (const auto& n : wa.children("/weights")) CHECK(at::equal(wa.read("/weights/" + n), wcr.read("/weights/" + n)));
}

TEST_CASE("select prints the meta-trained weights with the lowest validation score and records the choice") {
  test::TempDir dir;
  std::string msg;
  std::vector<std::string> weights;
  for (const std::string lr : {"0.0001", "0.03"}) {
    weights.push_back((dir / ("w" + lr + ".h5")).string());
    REQUIRE(hamlet_cli("meta-train --task=quadratic --optimizer=phnn-paper --epochs=1 --trajectories=3 --unroll=15 "
                       "--meta-lr=" + lr + " --validation-problems=5 --log-level=warn --weights-out=" + weights.back(),
                       &msg) == 0);
  }
  const double s0 = std::stod(io::H5Reader(weights[0]).attribute_string("/", "best_score"));
  const double s1 = std::stod(io::H5Reader(weights[1]).attribute_string("/", "best_score"));
  REQUIRE(s0 != s1);
  const std::string expected = s0 < s1 ? weights[0] : weights[1];
  const std::string json = (dir / "selection.json").string();
  std::string out;
  REQUIRE(hamlet_cli("select --log-level=warn --weights=" + weights[0] + " --weights=" + weights[1] + " --out=" + json +
                         " 2>/dev/null",
                     &out) == 0);
  CHECK(out == expected + "\n");
  std::ifstream in(json);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  CHECK_THAT(text, Catch::Contains("\"chosen\": \"" + expected + "\""));
  CHECK_THAT(text, Catch::Contains("meta_train.meta_lr"));
  // A candidate that cannot be read: exit 2, the file named, no selection written.
  const std::string json2 = (dir / "none.json").string();
  CHECK(hamlet_cli("select --weights=" + weights[0] + " --weights=" + (dir / "missing.h5").string() + " --out=" + json2,
                   &msg) == 2);
  CHECK_THAT(msg, Catch::Contains("missing.h5"));
  CHECK_FALSE(std::filesystem::exists(json2));
}
