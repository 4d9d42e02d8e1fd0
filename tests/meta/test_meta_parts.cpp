// The meta-trainer's parts: sampler and schedules, the meta-step guards, resume safety, and meta-training with
// every estimator.
#include "support/catch.hpp"

#include <cmath>
#include <filesystem>
#include <set>

#include "hamlet/learned/registry.hpp"
#include "hamlet/meta/checkpoint.hpp"
#include "hamlet/meta/epoch_hooks.hpp"
#include "hamlet/meta/epoch_trainer.hpp"
#include "hamlet/meta/meta_step.hpp"
#include "hamlet/meta/run_config.hpp"
#include "hamlet/meta/trajectory.hpp"
#include "hamlet/core/seed.hpp"
#include "hamlet/tasks/quadratic.hpp"
#include "hamlet/tasks/reparam.hpp"
#include "meta_fixtures.hpp"
#include "support/test_support.hpp"

using namespace hamlet;

namespace {

meta::MetaTrainOptions small_options() { return test::small_meta_options(); }
using test::same_tensors;

}  // namespace

TEST_CASE("truncation schedules: constant and log-uniform lengths, random grid offsets") {
  const tasks::QuadraticTask task;
  meta::MetaTrainOptions o = small_options();
  const meta::TrajectorySampler constant(task, o.schedule);
  CHECK(constant.episode(1, 0).length == o.schedule.horizon);
  CHECK(constant.episode(2, 3).index == 7);
  CHECK(constant.episode(2, 3).phase == 0);

  o.schedule.truncation = "log-uniform";
  o.schedule.length_min = 10;
  o.schedule.length_max = 1000;
  const meta::TrajectorySampler lu(task, o.schedule);
  double mean_log = 0;
  int below_100 = 0;
  constexpr int kEpisodes = 4000;
  for (int k = 0; k < kEpisodes; ++k) {
    const int64_t len = lu.episode_length(k);
    REQUIRE(len >= 10);
    REQUIRE(len < 1000);
    mean_log += std::log(static_cast<double>(len) + 0.5) / kEpisodes;  // +0.5: centre of the floor's cell
    below_100 += len < 100;
  }
  CHECK(lu.episode_length(17) == lu.episode_length(17));  // a pure function of (seed, k)
  // ln L is uniform on [ln 10, ln 1000): mean ln 100, half the mass below 100 (SE of the fraction 0.008).
  CHECK(mean_log == Approx(std::log(100.0)).margin(0.05));
  CHECK(std::abs(below_100 / static_cast<double>(kEpisodes) - 0.5) < 0.04);

  o.schedule.truncation = "constant";
  o.schedule.offset = 10;
  const meta::TrajectorySampler shifted(task, o.schedule);
  std::set<int64_t> phases;
  for (int k = 0; k < 200; ++k) phases.insert(shifted.episode(1 + k / 4, k % 4).phase);
  CHECK(phases.size() == 10);  // every phase 0..9 occurs
  meta::Episode e = shifted.episode(1, 0);
  e.phase = 3;
  e.length = 30;
  CHECK(e.window_last(0, 10) == 6);    // the first window is shortened to U − phase steps
  CHECK(e.window_last(7, 10) == 16);   // then full windows
  CHECK(e.window_last(27, 10) == 29);  // the tail ends with the episode

  meta::MetaTrainOptions bad = small_options();
  bad.schedule.truncation = "log-uniform";
  bad.schedule.length_min = 50;
  bad.schedule.length_max = 50;
  CHECK_THROWS_WITH(bad.validate(), Catch::Contains("schedule.max"));
  bad = small_options();
  bad.schedule.truncation = "linear";
  CHECK_THROWS_WITH(bad.validate(), Catch::Contains("constant or log-uniform"));
  bad = small_options();
  bad.estimator.name = "reinforce";
  CHECK_THROWS_WITH(bad.validate(), Catch::Contains("bptt, es or pes"));
  bad = small_options();
  bad.estimator.name = "es";
  bad.estimator.es.sigma = 0;
  CHECK_THROWS_WITH(bad.validate(), Catch::Contains("es.sigma"));
  bad = small_options();
  bad.estimator.name = "pes";
  bad.estimator.bptt.recompute = true;
  CHECK_THROWS_WITH(bad.validate(), Catch::Contains("meta_train.recompute is true, but meta_train.estimator=pes does "
                                                    "not read it"));
}

TEST_CASE("a window whose meta-gradient is undefined for every weight is skipped and counted, not an Adam step") {
  const tasks::QuadraticTask task;
  meta::MetaTrainOptions o = test::one_epoch_meta_options();
  o.schedule.unroll = 1;  // with window_loss = optml a one-step window's only loss sits at a detached θ
  auto opt = learned::make_learned("phnn-paper", {});
  const TensorList before = meta::clone_all(opt->weights());
  const auto r = meta::meta_train(*opt, task, o);
  CHECK(r.undefined_steps == o.schedule.trajectories * o.schedule.horizon);
  CHECK(r.curve[0].undefined_steps == r.undefined_steps);
  CHECK(r.meta_steps == 0);
  CHECK(r.skipped_steps == 0);
  CHECK(same_tensors(opt->weights(), before));

  // The meta-step on its own: all undefined -> no step and the state is untouched; one defined -> a step.
  meta::MetaOptimizerStep step(0.01, 0);
  step.init(opt->weights());
  meta::MetaGradient g;
  g.window = true;
  g.terms = 1;
  g.grads.resize(opt->weights().size());
  CHECK(step.apply(*opt, g).kind == meta::MetaStepOutcome::Kind::kUndefined);
  CHECK(step.state().step == 0);
  g.grads[0] = at::ones_like(opt->weights()[0]);
  const auto s = step.apply(*opt, g);
  CHECK(s.kind == meta::MetaStepOutcome::Kind::kTaken);
  CHECK(s.grad_norm == Approx(std::sqrt(static_cast<double>(opt->weights()[0].numel()))));
  CHECK(step.state().step == 1);
  g.grads[0] = at::full_like(opt->weights()[0], NAN);
  CHECK(step.apply(*opt, g).kind == meta::MetaStepOutcome::Kind::kNonFinite);
}

TEST_CASE("resume refuses a different configuration, a missing checkpoint and an unwritable path") {
  test::TempDir dir;
  const tasks::QuadraticTask task10(tasks::QuadraticOptions{});
  meta::MetaTrainOptions o = test::one_epoch_meta_options();
  o.schedule.trajectories = 2;
  o.checkpointing.path = (dir / "ckpt.h5").string();
  auto opt = learned::make_learned("phnn-paper", {});
  meta::meta_train(*opt, task10, o);
  const meta::Checkpoint c = meta::load_checkpoint(o.checkpointing.path);
  // The checkpoint holds the resolved configuration: task, optimizer and meta-training options.
  const meta::RunConfig stored = meta::parse_run_config(c.config);
  CHECK(stored == meta::resolved_config(task10, *opt, o));
  CHECK_THAT(c.config, Catch::Contains("task.dim=10") && Catch::Contains("optimizer.out_mul=") &&
                           Catch::Contains("estimator=bptt") && Catch::Contains("schedule=constant"));

  meta::MetaTrainOptions resume = o;
  resume.checkpointing.resume = true;
  resume.schedule.epochs = 2;
  SECTION("another task option") {
    tasks::QuadraticOptions q;
    q.dim = 20;
    const tasks::QuadraticTask task20(q);
    auto fresh = learned::make_learned("phnn-paper", {});
    CHECK_THROWS_WITH(meta::meta_train(*fresh, task20, resume),
                      Catch::Contains("task.dim is '10' in the checkpoint, '20' now"));
  }
  SECTION("another meta-learning rate, estimator or optimizer option") {
    meta::MetaTrainOptions lr = resume;
    lr.meta_step.lr = 0.003;
    auto fresh = learned::make_learned("phnn-paper", {});
    CHECK_THROWS_WITH(meta::meta_train(*fresh, task10, lr), Catch::Contains("meta_lr is '0.01' in the checkpoint, '0.003' now"));
    meta::MetaTrainOptions es = resume;
    es.estimator.name = "es";
    CHECK_THROWS_WITH(meta::meta_train(*fresh, task10, es), Catch::Contains("estimator is 'bptt'"));
    auto other = learned::make_learned("phnn-paper", {{"out_mul", "0.01"}});
    CHECK_THROWS_WITH(meta::meta_train(*other, task10, resume), Catch::Contains("optimizer.out_mul"));
  }
  SECTION("epochs may grow, not shrink") {
    auto fresh = learned::make_learned("phnn-paper", {});
    const auto r = meta::meta_train(*fresh, task10, resume);
    CHECK(r.curve.size() == 2);
    // The checkpoint now records epochs=2; asking for 1 is refused.
    meta::MetaTrainOptions fewer = resume;
    fewer.schedule.epochs = 1;
    CHECK_THROWS_WITH(meta::meta_train(*fresh, task10, fewer), Catch::Contains("cannot lower epochs (2 in the checkpoint, 1 now)"));
  }
  SECTION("the rule itself, and checkpoints without a resolved configuration") {
    const meta::RunConfig now = meta::resolved_config(task10, *opt, resume);
    CHECK_NOTHROW(meta::check_resume_config(stored, now, "c.h5"));
    meta::RunConfig extra = now;
    extra.emplace_back("new_key", "1");
    CHECK_THROWS_WITH(meta::check_resume_config(stored, extra, "c.h5"),
                      Catch::Contains("new_key is '(absent)' in the checkpoint, '1' now"));
    meta::RunConfig seed = stored;
    for (auto& [k, v] : seed) {
      if (k == "optimizer.seed") v = "99";  // the initialisation seed is not compared
    }
    CHECK_NOTHROW(meta::check_resume_config(seed, now, "c.h5"));
    // Nor where the data were read from: a checkout in another directory continues the run.
    meta::RunConfig moved = now, moved_stored = now;
    moved_stored.emplace_back("task.data_source", "/old/clone/data/mnist");
    moved_stored.emplace_back("task.data_dir", "/old/clone/data");
    moved.emplace_back("task.data_source", "/new/clone/data/mnist");
    moved.emplace_back("task.data_dir", "");
    CHECK_NOTHROW(meta::check_resume_config(moved_stored, moved, "c.h5"));
    CHECK(meta::parse_run_config(meta::format_run_config(now)) == now);
    CHECK_THROWS_WITH(meta::check_resume_config(meta::parse_run_config("batch=1, clip=0"), now, "old.h5"),
                      Catch::Contains("old.h5: the checkpoint holds no resolved configuration"));
  }
  SECTION("a checkpoint path that does not exist") {
    meta::MetaTrainOptions missing = resume;
    missing.checkpointing.path = (dir / "typo.h5").string();
    auto fresh = learned::make_learned("phnn-paper", {});
    CHECK_THROWS_WITH(meta::meta_train(*fresh, task10, missing), Catch::Contains("checkpoint does not exist"));
    CHECK_FALSE(std::filesystem::exists(missing.checkpointing.path));
  }
  SECTION("an unwritable checkpoint path is reported before any work") {
    meta::MetaTrainOptions bad = o;
    bad.checkpointing.path = (dir / "no-such-dir" / "c.h5").string();
    bad.schedule.epochs = 1000;  // would take minutes if training started
    auto fresh = learned::make_learned("phnn-paper", {});
    const TensorList before = meta::clone_all(fresh->weights());
    CHECK_THROWS_WITH(meta::meta_train(*fresh, task10, bad), Catch::Contains("no-such-dir"));
    CHECK(same_tensors(fresh->weights(), before));
  }
}

TEST_CASE("every estimator meta-trains a quadratic optimizer below its initialisation") {
  const tasks::QuadraticTask task;
  for (const std::string& estimator : meta::estimators().names()) {
    INFO(estimator);
    meta::MetaTrainOptions o = small_options();
    o.estimator.name = estimator;
    o.schedule.epochs = 4;
    test::set_pairs_if_read(o, estimator, 4);  // es and pes; bptt reads no es.* option (it would be refused)
    const bool perturbs = o.estimator.es.pairs == 4;
    auto opt = learned::make_learned("phnn-paper", {{"seed", "1"}});
    const auto r = meta::meta_train(*opt, task, o);
    INFO("initial " << r.initial_score << ", best " << r.best_score << " at epoch " << r.best_epoch);
    CHECK(r.best_score < 0.9 * r.initial_score);
    CHECK(r.meta_steps == 4 * 4 * 3 - 3 * r.cut_trajectories);
    // Budget: bptt runs each problem-step once, es / pes twice per pair.
    const int64_t per_member = 4 * 4 * 30 * 4;  // epochs x trajectories x horizon x B
    if (r.cut_trajectories == 0) CHECK(r.optimizee_steps == (perturbs ? 2 * 4 : 1) * per_member);
  }
}

TEST_CASE("benchmark's EpochTrainer is meta_train's training part: one epoch gives the same weights") {
  const tasks::QuadraticTask task;
  meta::MetaTrainOptions o = test::one_epoch_meta_options();
  for (const std::string estimator : {"bptt", "pes"}) {
    INFO(estimator);
    o.estimator.name = estimator;
    auto a = learned::make_learned("phnn-paper", {});
    auto b = learned::make_learned("phnn-paper", {});
    const auto full = meta::meta_train(*a, task, o);
    meta::EpochTrainer trainer(*b, task, o);
    meta::MetaTrainResult r;
    const meta::EpochRecord rec = trainer.train_epoch(1, r);
    CHECK(r.meta_steps == full.meta_steps);
    CHECK(rec.train_meta_loss == full.curve[0].train_meta_loss);
    // meta_train ends holding the best weights; when epoch 1 won, they are the epoch's weights.
    if (full.best_epoch == 1) CHECK(same_tensors(a->weights(), b->weights()));
  }
}

TEST_CASE("trajectory sampler: the reparametrisation augmentation rescales training problems only") {
  tasks::QuadraticOptions qo;
  qo.dtype = "float64";
  const tasks::QuadraticTask task(qo);
  meta::MetaTrainOptions o = test::small_meta_options();
  const meta::Episode plain = meta::TrajectorySampler(task, o.schedule).episode(1, 2);
  o.schedule.reparam = 1.5;
  CHECK(o.to_map().at("reparam") == "1.5");
  const meta::Episode augmented = meta::TrajectorySampler(task, o.schedule).episode(1, 2);
  const auto* r = dynamic_cast<const tasks::ReparamBatch*>(augmented.batch.get());
  REQUIRE(r != nullptr);
  // Same problems: the same losses at corresponding points θ' = θ / s.
  at::Generator gen = make_generator(4);
  const at::Tensor theta = at::randn({o.schedule.batch, 10}, gen, at::kDouble);
  CHECK(test::max_abs_diff(augmented.batch->loss({theta / r->scales()[0]}, 0), plain.batch->loss({theta}, 0)) < 1e-10);
  CHECK(r->scales()[0].sub(1.0).abs().max().item<double>() > 1e-3);
  o.schedule.reparam = -1;
  CHECK_THROWS_WITH(o.validate(), Catch::Contains("meta_train.reparam"));
}
