#pragma once
// Shared fixtures for the meta tests: a small meta-training configuration (and its one-epoch cut) and a value
// comparison of weight lists.
#include <ATen/ATen.h>

#include <algorithm>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "hamlet/core/tensor.hpp"
#include "hamlet/learned/registry.hpp"
#include "hamlet/meta/gradient_estimator.hpp"
#include "hamlet/meta/meta_train.hpp"
#include "support/catch.hpp"
#include "support/test_support.hpp"

namespace hamlet::test {

// 3 epochs x 4 trajectories of T = 30 steps in windows of U = 10, B = 4 problems, 8 validation problems.
inline meta::MetaTrainOptions small_meta_options() {
  meta::MetaTrainOptions o;
  o.schedule.epochs = 3;
  o.schedule.trajectories = 4;
  o.schedule.horizon = 30;
  o.schedule.unroll = 10;
  o.schedule.batch = 4;
  o.validation.problems = 8;
  o.progress = false;
  return o;
}

// small_meta_options() cut to one epoch: for tests that look at what one epoch does, or only need training to run.
inline meta::MetaTrainOptions one_epoch_meta_options() {
  meta::MetaTrainOptions o = small_meta_options();
  o.schedule.epochs = 1;
  return o;
}

// Sets es.pairs to `pairs` when the estimator `name` reads it (es, pes; bptt would refuse it), as a caller that knows
// no estimator by name does: from the registry's list of the options each estimator reads.
inline void set_pairs_if_read(meta::MetaTrainOptions& o, const std::string& name, int64_t pairs) {
  const auto& reads = meta::estimators().at(name).reads;
  if (std::find(reads.begin(), reads.end(), "es.pairs") != reads.end()) o.estimator.es.pairs = pairs;
}

// Same count and, compared in float64, the same values.
inline bool same_tensors(const TensorList& a, const TensorList& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (!at::equal(a[i].to(at::kDouble), b[i].to(at::kDouble))) return false;
  }
  return true;
}

// Meta-trains a fresh learned optimizer `name` (built from `optimizer_options`) on `task` with `o` on `world`
// data-parallel ranks: threads of this process, each with its own Gloo communicator over a file store in a
// temporary directory (world 1: no communicator). Fails the test naming any rank's error; returns rank 0's final
// weights (the selected ones: rank 0 selects; the others end with the last weights, so `ranks_agree` checks that
// every rank holds rank 0's, true when the selection kept the last epoch).
inline TensorList train_on_ranks(const std::string& name, const OptionMap& optimizer_options, const tasks::Task& task,
                                 const meta::MetaTrainOptions& o, int64_t world, bool ranks_agree = false) {
  TempDir dir;
  std::vector<TensorList> weights(static_cast<std::size_t>(world));
  std::vector<std::string> errors(static_cast<std::size_t>(world));
  std::vector<std::thread> threads;
  for (int64_t r = 0; r < world; ++r) {
    threads.emplace_back([&, r] {
      try {
        meta::MetaTrainOptions mine = o;
        mine.parallel.rank = r;
        mine.parallel.world_size = world;
        mine.parallel.rendezvous = "file://" + (dir / "store").string();
        mine.parallel.timeout_s = 60;
        auto opt = learned::make_learned(name, optimizer_options);
        meta::meta_train(*opt, task, mine, world > 1 ? parallel::connect(mine.parallel) : nullptr);
        weights[static_cast<std::size_t>(r)] = opt->weights();
      } catch (const std::exception& e) {
        errors[static_cast<std::size_t>(r)] = e.what();
      }
    });
  }
  for (auto& t : threads) t.join();
  for (const auto& e : errors) {
    INFO(e);
    REQUIRE(e.empty());
  }
  for (int64_t r = 1; ranks_agree && r < world; ++r) CHECK(same_tensors(weights[0], weights[static_cast<std::size_t>(r)]));
  return weights[0];
}

}  // namespace hamlet::test
