// Checkpoints (io/checkpoint_file.hpp): every field round-trips bitwise, the committed checkpoint and a 7-column
// checkpoint of schema version 0 still read, a newer version is refused.
#include "hamlet/io/checkpoint_file.hpp"
#include "hamlet/io/h5.hpp"
#include "hamlet/io/schema.hpp"
#include "io/io_fixtures.hpp"
#include "support/catch.hpp"
#include "support/checks.hpp"
#include "support/test_support.hpp"

using namespace hamlet;

namespace {

bool same(const TensorList& a, const TensorList& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (!at::equal(a[i].to(at::kDouble), b[i])) return false;
  }
  return true;
}

}  // namespace

TEST_CASE("checkpoint: every field round-trips bitwise") {
  test::TempDir dir;
  const std::string path = (dir / "ckpt.h5").string();
  io::CheckpointRecord c;
  c.epoch = 3;
  c.weights = {at::randn({16, 4}, at::kFloat), at::randn({2}, at::kFloat)};
  c.best_weights = {at::randn({16, 4}, at::kFloat), at::randn({2}, at::kFloat)};
  c.meta_step = 30;
  c.meta_slots["exp_avg"] = {at::randn({16, 4}), at::randn({2})};
  c.meta_slots["exp_avg_sq"] = {at::rand({16, 4}), at::rand({2})};
  c.meta_scalars["count"] = at::tensor({1.0, 2.0}, at::kDouble);
  c.curve = at::arange(3 * 8, at::kDouble).reshape({3, 8});
  c.best_score = 0.25, c.initial_score = 1.5;
  c.best_epoch = 2, c.meta_steps = 30, c.skipped_steps = 1, c.cut_trajectories = 4;
  c.architecture = "phnn d=1";
  c.config = "task=quadratic\nepochs=3\n";
  io::write_checkpoint(path, c);

  const io::CheckpointRecord b = io::read_checkpoint(path);
  CHECK(b.schema_version == io::kCheckpointSchema);
  CHECK(same(c.weights, b.weights));
  CHECK(same(c.best_weights, b.best_weights));
  REQUIRE(b.meta_slots.size() == 2);
  CHECK(same(c.meta_slots.at("exp_avg"), b.meta_slots.at("exp_avg")));
  CHECK(same(c.meta_slots.at("exp_avg_sq"), b.meta_slots.at("exp_avg_sq")));
  CHECK(at::equal(b.meta_scalars.at("count"), c.meta_scalars.at("count")));
  CHECK(at::equal(b.curve, c.curve));
  // The scalars read back as written above (epoch 3, meta_step 30, best_score 0.25, ...).
  using R = io::CheckpointRecord;
  test::check_members_equal(b, c, &R::epoch, &R::meta_step, &R::best_score, &R::initial_score, &R::best_epoch,
                            &R::meta_steps, &R::skipped_steps, &R::cut_trajectories, &R::architecture, &R::config);
  CHECK_FALSE(io::H5Reader(path).layout("/weights/0").chunked);  // small: contiguous
}

TEST_CASE("checkpoint: the committed checkpoint (schema version 0, no checksum) reads") {
  const auto path = test::source_dir() / "results/budget/checkpoints/phnn-features_n1000_seed1.h5";
  const io::CheckpointRecord c = io::read_checkpoint(path.string());
  CHECK(c.schema_version == 0);
  CHECK(c.epoch == 15);
  CHECK(c.best_epoch == 14);
  CHECK(c.meta_steps == 1875);
  CHECK(c.weights.size() == 14);
  CHECK(c.best_weights.size() == 14);
  CHECK(c.meta_step == 1875);
  CHECK(c.meta_slots.at("exp_avg").size() == 14);
  CHECK(c.curve.sizes() == at::IntArrayRef({15, 8}));
  CHECK(c.config.rfind("task=mlp\n", 0) == 0);
}

TEST_CASE("checkpoint: a version 0 curve of 7 columns gains undefined_steps = 0, a newer version is refused") {
  test::TempDir dir;
  const std::string path = (dir / "old.h5").string();
  const auto write = [&](int64_t version, int64_t columns) {
    io::H5Writer w(path);
    if (version > 0) w.set_attribute("/", io::kSchemaVersionAttribute, version);
    w.set_attribute("/weights", "count", int64_t{0});
    w.set_attribute("/best_weights", "count", int64_t{0});
    w.set_attribute("/meta_state", "step", int64_t{0});
    w.write("/curve", at::ones({2, columns}, at::kDouble));
    test::write_checkpoint_attributes(w, 2, "epochs=2");
    w.commit();
  };
  write(0, 7);
  const io::CheckpointRecord c = io::read_checkpoint(path);
  REQUIRE(c.curve.sizes() == at::IntArrayRef({2, 8}));
  CHECK(c.curve.select(1, 6).sum().item<double>() == 2);
  CHECK(c.curve.select(1, 7).sum().item<double>() == 0);
  write(1, 7);  // no shim at version 1: the caller sees the 7 columns (meta::load_checkpoint refuses them)
  CHECK(io::read_checkpoint(path).curve.size(1) == 7);
  write(io::kCheckpointSchema + 1, 8);
  CHECK_THROWS_WITH(io::read_checkpoint(path),
                    Catch::Contains(path) && Catch::Contains("checkpoint has schema_version " +
                                                             std::to_string(io::kCheckpointSchema + 1)));
}
