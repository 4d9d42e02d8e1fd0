// Meta-training run files (io/meta_train_file.hpp): every field round-trips, committed files of schema version 0
// (7-column curves, missing counters) still read, a newer version is refused.
#include "hamlet/io/h5.hpp"
#include "hamlet/io/meta_train_file.hpp"
#include "hamlet/io/schema.hpp"
#include "support/catch.hpp"
#include "support/checks.hpp"
#include "support/test_support.hpp"

using namespace hamlet;

TEST_CASE("meta-training run file: every field round-trips") {
  test::TempDir dir;
  const std::string path = (dir / "meta.h5").string();
  io::MetaTrainRunRecord m;
  m.header = {"meta-train", "0.1.0", "deps", "hamlet meta-train", "epochs = 2\n", "2026-12-08T00:00:00Z", "mlp",
              {{"activation", "sigmoid"}}};
  m.optimizer = "lstm";
  m.architecture = "lstm hidden=20";
  m.optimizer_options = {{"hidden", "20"}};
  m.num_params = 5301;
  m.weights_file = "/tmp/w.h5";
  m.curve = at::arange(2 * 8, at::kDouble).reshape({2, 8});
  m.initial_score = 2, m.best_score = 1, m.best_epoch = 2;
  m.meta_steps = 10, m.skipped_steps = 1, m.cut_trajectories = 2, m.undefined_steps = 3, m.optimizee_steps = 400;
  m.train_seconds = 4.5, m.seconds = 5.5, m.ranks = 2;
  io::MetaTrainFileWriter(path).write(m);

  const io::MetaTrainRunRecord b = io::read_meta_train_run(path);
  CHECK(b.schema_version == io::kMetaTrainFileSchema);
  // Every field reads back as written above (kind "meta-train", num_params 5301, meta_steps 10, ...).
  using H = io::RunHeader;
  test::check_members_equal(b.header, m.header, &H::kind, &H::command, &H::config, &H::task_options);
  CHECK(at::equal(b.curve, m.curve));
  using R = io::MetaTrainRunRecord;
  test::check_members_equal(b, m, &R::optimizer, &R::architecture, &R::optimizer_options, &R::num_params,
                            &R::weights_file, &R::initial_score, &R::best_score, &R::best_epoch, &R::meta_steps,
                            &R::skipped_steps, &R::cut_trajectories, &R::undefined_steps, &R::optimizee_steps,
                            &R::train_seconds, &R::seconds, &R::ranks);
  CHECK(io::H5Reader(path).attribute_string("/meta_train/curve", "columns") == io::kMetaTrainCurveColumns);
}

TEST_CASE("meta-training run file: committed files of schema version 0 read") {
  const auto results = test::source_dir() / "results";
  // Written 2026-11-22: a 7-column curve, k=v options, no undefined_steps / optimizee_steps / ranks.
  const io::MetaTrainRunRecord old = io::read_meta_train_run((results / "paper/full/meta/quadratic_phnn_seed2.h5").string());
  CHECK(old.schema_version == 0);
  CHECK(old.optimizer == "phnn");
  CHECK(old.optimizer_options.at("mass") == "constant");
  CHECK(old.header.task_options.at("dim") == "10");
  CHECK(old.curve.sizes() == at::IntArrayRef({30, 8}));
  CHECK(old.curve.select(1, 7).abs().sum().item<double>() == 0);
  CHECK(old.best_epoch == 22);
  CHECK(old.undefined_steps == 0);
  CHECK(old.ranks == 1);
  // JSON options, 8 columns, every counter.
  const io::MetaTrainRunRecord json = io::read_meta_train_run((results / "hnn/meta/mlp-lopt_seed1.h5").string());
  CHECK(json.optimizer_options.at("hidden") == "4");
  CHECK(json.curve.size(1) == 8);
  CHECK(json.optimizee_steps == 10000);
}

TEST_CASE("meta-training run file: a newer schema_version is refused") {
  test::TempDir dir;
  const std::string path = (dir / "future.h5").string();
  {
    io::H5Writer w(path);
    w.set_attribute("/", io::kSchemaVersionAttribute, io::kMetaTrainFileSchema + 5);
    w.write("/meta_train/curve", at::zeros({1, 8}, at::kDouble));
    w.commit();
  }
  CHECK_THROWS_WITH(io::read_meta_train_run(path),
                    Catch::Contains(path) &&
                        Catch::Contains("schema_version " + std::to_string(io::kMetaTrainFileSchema + 5)) &&
                        Catch::Contains("version " + std::to_string(io::kMetaTrainFileSchema)));
}
