// Meta-training on a distribution of tasks (tasks/mixture.hpp): two quadratic sizes and an MLP on the 8×8 digits,
// with every estimator; per-component validation scores whose weighted mean selects; bitwise resume; two
// data-parallel ranks equal one process.
#include "support/catch.hpp"

#include <filesystem>
#include <fstream>

#include "hamlet/eval/evaluate.hpp"
#include "hamlet/io/meta_train_file.hpp"
#include "hamlet/optim/registry.hpp"
#include "hamlet/learned/registry.hpp"
#include "hamlet/meta/checkpoint.hpp"
#include "hamlet/meta/gradient_estimator.hpp"
#include "hamlet/meta/meta_train.hpp"
#include "hamlet/tasks/registry.hpp"
#include "meta_fixtures.hpp"
#include "support/test_support.hpp"

using namespace hamlet;

namespace {

// Two quadratic sizes and, when the digits are there, a small MLP on them; float64 where the test compares bits.
tasks::TaskPtr make_mixture(const test::TempDir& dir, const std::string& dtype = "float32") {
  std::string text = "[quad3]\ntask = quadratic\ndim = 3\ndtype = " + dtype + "\n"
                     "[quad6]\ntask = quadratic\nweight = 2\ndim = 6\ndtype = " + dtype + "\n";
  const auto digits = test::data_dir() / "digits";
  if (std::filesystem::exists(digits / "digits.csv.gz")) {
    text += "[digits]\ntask = mlp\ndataset = digits\ndata_dir = " + digits.string() +
            "\nhidden = 8\nbatch_size = 32\ndtype = " + dtype + "\n";
  } else {
    WARN("no " << digits << ": the mixture has no MLP component (run scripts/fetch_data.sh)");
  }
  const std::string path = (dir / "mix.ini").string();
  std::ofstream(path) << text;
  return tasks::make_task("mixture", {{"file", path}});
}

meta::MetaTrainOptions mixture_options() {
  meta::MetaTrainOptions o = test::small_meta_options();
  o.schedule.epochs = 4;
  o.schedule.batch = 2;
  o.validation.problems = 4;
  return o;
}

}  // namespace

TEST_CASE("a mixture meta-trains below its initialisation with every estimator, scoring each component") {
  test::TempDir dir;
  const tasks::TaskPtr mix = make_mixture(dir);
  const std::size_t n_components = mix->components().size();
  for (const std::string& estimator : meta::estimators().names()) {
    INFO(estimator);
    meta::MetaTrainOptions o = mixture_options();
    o.estimator.name = estimator;
    test::set_pairs_if_read(o, estimator, 4);
    auto opt = learned::make_learned("mlp-lopt", {{"seed", "1"}});
    const meta::MetaTrainResult r = meta::meta_train(*opt, *mix, o);
    INFO("initial " << r.initial_score << ", best " << r.best_score);
    CHECK(r.best_score < r.initial_score);
    for (const auto& e : r.curve) {
      REQUIRE(e.component_scores.size() == n_components);
      CHECK(e.validation_score == Approx(meta::combined_score(*mix, e.component_scores)).epsilon(1e-15));
    }
  }
}

TEST_CASE("a mixture's meta-training resumes bitwise and runs on two ranks as in one process") {
  test::TempDir dir;
  const tasks::TaskPtr mix = make_mixture(dir, "float64");
  meta::MetaTrainOptions o = mixture_options();
  o.checkpointing.path = (dir / "full.h5").string();
  auto full = learned::make_learned("mlp-lopt", {{"dtype", "float64"}});
  const auto whole = meta::meta_train(*full, *mix, o);

  SECTION("stop after 2 epochs, resume to 4") {
    meta::MetaTrainOptions first = o;
    first.checkpointing.path = (dir / "part.h5").string();
    first.schedule.epochs = 2;
    auto part = learned::make_learned("mlp-lopt", {{"dtype", "float64"}});
    meta::meta_train(*part, *mix, first);
    meta::MetaTrainOptions second = first;
    second.schedule.epochs = 4;
    second.checkpointing.resume = true;
    const auto resumed = meta::meta_train(*part, *mix, second);
    CHECK(test::same_tensors(part->weights(), full->weights()));
    CHECK(resumed.best_score == whole.best_score);
    // The epochs before the resume come from the checkpoint, their component scores included.
    REQUIRE(resumed.curve.size() == whole.curve.size());
    for (std::size_t e = 0; e < whole.curve.size(); ++e) {
      CHECK(resumed.curve[e].component_scores == whole.curve[e].component_scores);
    }
  }
  SECTION("two ranks (threads with Gloo) end with the weights of one process") {
    o.checkpointing.path.clear();
    const TensorList two = test::train_on_ranks("mlp-lopt", {{"dtype", "float64"}}, *mix, o, 2);
    // bptt averages the ranks' halves of each episode's problems: rank 0 (which selects) ends with the weights of
    // one process up to float64 rounding.
    for (std::size_t i = 0; i < two.size(); ++i) CHECK(test::max_abs_diff(two[i], full->weights()[i]) < 1e-10);
  }
}

TEST_CASE("a mixture's component scores go into the meta-training run file and come back") {
  test::TempDir dir;
  const tasks::TaskPtr mix = make_mixture(dir);
  std::vector<meta::EpochRecord> curve(3);
  for (std::size_t e = 0; e < curve.size(); ++e) {
    curve[e].epoch = static_cast<int64_t>(e) + 1;
    for (std::size_t k = 0; k < mix->components().size(); ++k) curve[e].component_scores.push_back(0.5 * e + k);
  }
  io::MetaTrainRunRecord run;
  run.header.task = "mixture";
  run.curve = meta::curve_to_tensor(curve);
  run.component_scores = meta::component_scores_to_tensor(curve);
  for (const auto& c : mix->components()) run.component_names.push_back(c.name);
  const std::string path = (dir / "run.h5").string();
  io::MetaTrainFileWriter(path).write(run);

  const io::MetaTrainRunRecord back = io::read_meta_train_run(path);
  CHECK(back.schema_version == io::kMetaTrainFileSchema);
  CHECK(back.component_names == run.component_names);
  std::vector<meta::EpochRecord> again = meta::curve_from_tensor(back.curve);
  meta::component_scores_from_tensor(back.component_scores, again);
  for (std::size_t e = 0; e < curve.size(); ++e) CHECK(again[e].component_scores == curve[e].component_scores);

  SECTION("a single task writes none") {
    const std::string single = (dir / "single.h5").string();
    run.component_scores = meta::component_scores_to_tensor(meta::curve_from_tensor(run.curve));
    run.component_names.clear();
    CHECK_FALSE(run.component_scores.defined());
    io::MetaTrainFileWriter(single).write(run);
    CHECK_FALSE(io::read_meta_train_run(single).component_scores.defined());
  }
  SECTION("scores that do not match the curve's epochs are refused") {
    std::vector<meta::EpochRecord> shorter(2);
    CHECK_THROWS_WITH(meta::component_scores_from_tensor(back.component_scores, shorter),
                      Catch::Contains("one row per epoch"));
  }
}

TEST_CASE("a sampled MLP family meta-trains below its initialisation, validated on its drawn configurations") {
  if (!std::filesystem::exists(test::data_dir() / "digits" / "digits.csv.gz")) {
    WARN("no digits: run scripts/fetch_data.sh");
    return;
  }
  const tasks::TaskPtr family = tasks::make_task(
      "mlp-family", {{"datasets", "digits"}, {"widths", "8:16"}, {"depths", "1:2"}, {"validation_configs", "3"},
                     {"batch_size", "32"}});
  meta::MetaTrainOptions o = mixture_options();
  auto opt = learned::make_learned("mlp-lopt", {{"seed", "1"}});
  const meta::MetaTrainResult r = meta::meta_train(*opt, *family, o);
  INFO("initial " << r.initial_score << ", best " << r.best_score);
  CHECK(r.best_score < r.initial_score);
  for (const auto& e : r.curve) CHECK(e.component_scores.size() == 3);

  // The evaluator runs one problem per program (default_batch 1), each the problem the family samples alone.
  eval::EvaluateOptions eo;
  eo.problems = 3;
  eo.steps = 5;
  eo.progress = false;
  const auto adam = optim::make_optimizer("adam", {{"lr", "0.01"}});
  const eval::Trajectory tr = eval::evaluate(*family, *adam, eo);
  REQUIRE(tr.loss.sizes() == at::IntArrayRef({3, 5}));
  for (int64_t i = 0; i < 3; ++i) {
    const auto one = family->sample(tasks::Split::kTest, 0, i, 1, c10::kCPU);
    CHECK(tr.loss[i][0].item<double>() == Approx(one->loss(one->initial_params(), 0).item<double>()).epsilon(1e-6));
  }
}

TEST_CASE("phnn-lift meta-trained as the mixture protocol (PES, log-uniform lengths, augmentation) improves") {
  // experiments/protocols/mixture at test size: the sampled digits MLPs, PES on windows of 10 steps, episode lengths
  // log-uniform in [10, 60), weight reparametrisation 10^U(-1, 1), log meta-loss.
  if (!std::filesystem::exists(test::data_dir() / "digits" / "digits.csv.gz")) {
    WARN("no digits: run scripts/fetch_data.sh");
    return;
  }
  const tasks::TaskPtr family = tasks::make_task(
      "mlp-family", {{"datasets", "digits"}, {"widths", "8:16"}, {"depths", "1"}, {"validation_configs", "2"},
                     {"batch_size", "32"}});
  meta::MetaTrainOptions o = mixture_options();
  o.estimator.name = "pes";
  o.estimator.es.pairs = 2;
  o.schedule.truncation = "log-uniform";
  o.schedule.length_min = 10;
  o.schedule.length_max = 60;
  o.schedule.reparam = 1.0;
  o.schedule.meta_loss = "log";
  o.meta_step.lr = 0.03;
  auto opt = learned::make_learned("phnn-lift", {{"seed", "1"}, {"out_mul", "0.003"}});
  const meta::MetaTrainResult r = meta::meta_train(*opt, *family, o);
  INFO("initial " << r.initial_score << ", best " << r.best_score);
  CHECK(r.best_score < r.initial_score);
  CHECK(r.skipped_steps == 0);
  for (const auto& e : r.curve) CHECK(e.component_scores.size() == 2);
}
