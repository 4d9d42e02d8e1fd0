#include "hamlet/learned/registry.hpp"
#include "hamlet/meta/gradient_estimator.hpp"
#include "hamlet/meta/meta_train.hpp"
#include "hamlet/tasks/quadratic.hpp"
#include "meta_fixtures.hpp"
#include "support/catch.hpp"
#include "support/test_support.hpp"

using namespace hamlet;

namespace {

// Meta-trains `name` in float64 on W ranks of a 5-D float64 quadratic; rank 0's weights, checked equal on every rank
// (every rank applied the same combined meta-steps).
TensorList train_on_ranks(const std::string& name, const meta::MetaTrainOptions& o, int64_t world) {
  tasks::QuadraticOptions qo;
  qo.dim = 5;
  qo.dtype = "float64";
  const tasks::QuadraticTask task(qo);
  return test::train_on_ranks(name, {{"seed", "3"}, {"dtype", "float64"}}, task, o, world, /*ranks_agree=*/true);
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
    meta::MetaTrainOptions o = test::one_epoch_meta_options();
    o.schedule.trajectories = 2;
    o.schedule.batch = 2;
    o.estimator.name = estimator;
    test::set_pairs_if_read(o, estimator, 2);  // es, pes: two pairs, one per rank
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
