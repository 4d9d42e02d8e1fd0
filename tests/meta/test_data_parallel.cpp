#include <thread>

#include "hamlet/learned/registry.hpp"
#include "hamlet/meta/gradient_estimator.hpp"
#include "hamlet/meta/meta_train.hpp"
#include "hamlet/tasks/quadratic.hpp"
#include "meta_fixtures.hpp"
#include "support/catch.hpp"
#include "support/test_support.hpp"

using namespace hamlet;

namespace {

// Meta-trains `name` in float64 on W ranks (threads of this process, each with its own Gloo communicator) and
// returns rank 0's final weights.
TensorList train_on_ranks(const std::string& name, meta::MetaTrainOptions o, int64_t world) {
  test::TempDir dir;
  std::vector<TensorList> weights(static_cast<std::size_t>(world));
  std::vector<std::string> errors(static_cast<std::size_t>(world));
  std::vector<std::thread> threads;
  for (int64_t r = 0; r < world; ++r) {
    threads.emplace_back([&, r] {
      try {
        tasks::QuadraticOptions qo;
        qo.dim = 5;
        qo.dtype = "float64";
        const tasks::QuadraticTask task(qo);
        auto opt = learned::make_learned(name, {{"seed", "3"}, {"dtype", "float64"}});
        meta::MetaTrainOptions mine = o;
        mine.parallel.rank = r;
        mine.parallel.world_size = world;
        parallel::CommunicatorPtr c;
        if (world > 1) {
          parallel::DistributedOptions d;
          d.world_size = world;
          d.rank = r;
          d.rendezvous = "file://" + (dir / "store").string();
          d.timeout_s = 60;
          c = parallel::connect(d);
        }
        meta::meta_train(*opt, task, mine, c);
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
  // Every rank applied the same combined meta-steps, so all hold the same weights.
  for (int64_t r = 1; r < world; ++r) CHECK(test::same_tensors(weights[0], weights[static_cast<std::size_t>(r)]));
  return weights[0];
}

double max_diff(const TensorList& a, const TensorList& b) {
  double m = 0;
  for (std::size_t i = 0; i < a.size(); ++i) m = std::max(m, test::max_abs_diff(a[i], b[i]));
  return m;
}

}  // namespace

TEST_CASE("data-parallel meta-training: 2 ranks with B = 2 equal 1 process with B = 2 for every estimator") {
  for (const std::string& estimator : meta::estimators().names()) {
    INFO(estimator);
    meta::MetaTrainOptions o = test::small_meta_options();
    o.schedule.epochs = 1;
    o.schedule.trajectories = 2;
    o.schedule.batch = 2;
    o.estimator.name = estimator;
    if (estimator != "bptt") o.estimator.es.pairs = 2;  // es, pes: two pairs, one per rank
    o.schedule.train_tail = true;
    const TensorList one = train_on_ranks("phnn-paper", o, 1);
    const TensorList two = train_on_ranks("phnn-paper", o, 2);
    // The weights moved (the comparison is not of two initialisations) and agree to float64 rounding.
    auto init = learned::make_learned("phnn-paper", {{"seed", "3"}, {"dtype", "float64"}});
    CHECK(max_diff(one, init->weights()) > 1e-4);
    CHECK(max_diff(one, two) < 1e-10);
  }
}

TEST_CASE("data-parallel meta-training: shares must divide the meta-batch") {
  meta::MetaTrainOptions o = test::small_meta_options();
  o.schedule.batch = 3;
  o.parallel.world_size = 2;
  CHECK_THROWS_WITH(o.validate(), Catch::Contains("meta_train.batch (3) must be a multiple of the world size (2)"));
  o.schedule.batch = 4;
  o.estimator.name = "es";
  o.estimator.es.pairs = 3;
  CHECK_THROWS_WITH(o.validate(), Catch::Contains("meta_train.es.pairs (3) must be a multiple of the world size (2)"));
}
