// Tutorial 3 of docs/extending.md: a new gradient estimator, "es-sign": antithetic ES whose pairs vote with the sign
// of their loss difference instead of its size (fitness shaping with two members, as rank-based ES does; Salimans
// et al. 2017), so one exploding member cannot dominate a meta-step. It reuses what es and pes share
// (AntitheticEstimator: pairs, perturbations, the weight guard, ranks) and overrides only how a pair's differences
// become its estimate. Built into hamlet it would be include/hamlet/meta/es_sign.hpp + src/meta/es_sign.cpp and one
// line in src/meta/gradient_estimator.cpp.
#include "support/catch.hpp"

#include <cmath>

#include "hamlet/learned/registry.hpp"
#include "hamlet/meta/gradient_estimator.hpp"
#include "hamlet/meta/meta_train.hpp"
#include "hamlet/meta/perturbed_unroll.hpp"
#include "hamlet/tasks/quadratic.hpp"

using namespace hamlet;

namespace {

// TUTORIAL: the estimator -------------------------------------------------------------------------------------
// Pair i with loss differences Δ_s over the window's S steps contributes sign(Σ_s Δ_s)·ε_i·√(π/2) / (σ·S) per step:
// for a loss that is linear in φ with gradient a, E[sign(aᵀε) ε] = σ·√(2/π)·a/‖a‖, so the estimate points along
// the gradient with the norm of S·a/‖a‖ per window (a direction, not a magnitude: Adam's meta-step reads directions).
class SignEs final : public meta::AntitheticEstimator {
 public:
  SignEs(const meta::ScheduleOptions& schedule, const meta::EsOptions& options,
         const parallel::DistributedOptions& parallel)
      : AntitheticEstimator(schedule, options, parallel, "es-sign") {}
  std::string name() const override { return "es-sign"; }

 protected:
  TensorList combine(std::size_t, const std::vector<double>& delta, const TensorList& eps) override {
    double total = 0;
    for (const double d : delta) total += d;
    const double vote = (total > 0) - (total < 0);
    const double scale = vote * std::sqrt(M_PI / 2) / (options_.sigma * static_cast<double>(delta.size()));
    TensorList out;
    for (const auto& e : eps) out.push_back(e.to(at::kDouble) * scale);
    return out;
  }
};

// TUTORIAL: registration (built in, this is the line in src/meta/gradient_estimator.cpp). The entry says how to
// build it from the schedule, its own options (es.pairs, es.sigma) and the ranks, and which options it reads.
void register_sign_es() {
  static const bool done = [] {
    meta::register_estimator("es-sign", {[](const meta::MetaTrainOptions& o) -> meta::GradientEstimatorPtr {
                                           return std::make_unique<SignEs>(o.schedule, o.estimator.es, o.parallel);
                                         },
                                         meta::EsOptions::spec().keys()});
    return true;
  }();
  (void)done;
}

}  // namespace

TEST_CASE("tutorial estimator: es-sign points along the exact meta-gradient of a one-window problem") {
  register_sign_es();
  // One window of one step on a 4-D quadratic: the window loss is F(θ1) + F(θ0) with θ1 = update(θ0), so its
  // gradient over φ is what bptt computes exactly; es-sign must agree in direction (cosine near 1 with many pairs).
  tasks::QuadraticTask task(tasks::QuadraticOptions{4, "float64"});
  meta::MetaTrainOptions o;
  o.schedule.horizon = 2;
  o.schedule.unroll = 2;
  o.schedule.batch = 4;
  o.schedule.explode_factor = 0;
  o.estimator.es.pairs = 400;
  o.estimator.es.sigma = 1e-3;
  const meta::TrajectorySampler sampler(task, o.schedule);
  auto lopt = learned::make_learned("phnn-paper", {{"dtype", "float64"}, {"out_mul", "0.1"}});
  lopt->set_trainable(true);

  o.estimator.name = "bptt";
  const auto bptt = meta::make_estimator(o);
  bptt->start(sampler.episode(1, 0), *lopt);
  const meta::MetaGradient exact = bptt->advance(*lopt);
  o.estimator.name = "es-sign";
  o.validate();
  const auto sign = meta::make_estimator(o);
  sign->start(sampler.episode(1, 0), *lopt);
  const meta::MetaGradient voted = sign->advance(*lopt);
  REQUIRE(exact.window);
  REQUIRE(voted.window);
  double dot = 0, a2 = 0, b2 = 0;
  for (std::size_t i = 0; i < exact.grads.size(); ++i) {
    if (!exact.grads[i].defined()) continue;
    const at::Tensor a = exact.grads[i].to(at::kDouble), b = voted.grads[i].to(at::kDouble);
    dot += (a * b).sum().item<double>();
    a2 += (a * a).sum().item<double>();
    b2 += (b * b).sum().item<double>();
  }
  CHECK(dot / std::sqrt(a2 * b2) > 0.8);
  // The guard left the optimizer's own weights in place.
  CHECK(lopt->weights()[0].requires_grad());
}

TEST_CASE("tutorial estimator: es-sign is listed, refuses options it does not read and meta-trains") {
  register_sign_es();
  CHECK(meta::estimators().contains("es-sign"));
  meta::MetaTrainOptions o;
  o.estimator.name = "es-sign";
  o.estimator.bptt.recompute = true;
  CHECK_THROWS_WITH(o.validate(), Catch::Contains("does not read it"));
  o.estimator.bptt.recompute = false;
  o.schedule.epochs = 2;
  o.schedule.trajectories = 2;
  o.schedule.horizon = 20;
  o.schedule.unroll = 10;
  o.schedule.batch = 2;
  o.estimator.es.pairs = 4;
  o.validation.problems = 4;
  o.progress = false;
  tasks::QuadraticTask task;
  auto lopt = learned::make_learned("phnn-paper", {});
  const meta::MetaTrainResult r = meta::meta_train(*lopt, task, o);
  CHECK(r.meta_steps == 2 * 2 * 2);
  CHECK(std::isfinite(r.best_score));
}
