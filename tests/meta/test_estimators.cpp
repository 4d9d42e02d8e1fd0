// Gradient estimators against the known answers of docs/methods.md §10.7 (computed by float64 numpy programs from
// the specification) and an independent closed-form reference (forward sensitivities of the toy system, computed
// here in plain doubles).
#include "support/catch.hpp"

#include <cmath>
#include <memory>
#include <vector>

#include "hamlet/meta/bptt.hpp"
#include "hamlet/meta/es.hpp"
#include "hamlet/meta/perturbed_unroll.hpp"
#include "hamlet/meta/pes.hpp"
#include "hamlet/meta/trajectory.hpp"
#include "hamlet/learned/registry.hpp"
#include "hamlet/tasks/quadratic.hpp"
#include "toy_influence.hpp"

using namespace hamlet;

namespace {

constexpr int kK = 2, kJ = 10;
constexpr double kPhi = 0.1;

// G[j][τ] = ∂L_j/∂φ_τ of the toy (L_j = mean of the truncation's K losses), by forward sensitivities.
std::vector<std::vector<double>> toy_jacobian() {
  std::vector<std::vector<double>> g(kJ, std::vector<double>(kJ, 0.0));
  double s0 = 0, s1 = 0;
  std::vector<std::array<double, 2>> ds(kJ, {0.0, 0.0});
  for (int j = 0; j < kJ; ++j) {
    for (int k = 0; k < kK; ++k) {
      for (int tau = 0; tau < kJ; ++tau) g[j][tau] += (s0 - 1.0) * ds[tau][0] / kK;
      const double n0 = 0.5 * s0 + 0.5 * s1 + kPhi, n1 = 0.5 * s1 - 3.0 * kPhi;
      for (auto& d : ds) d = {0.5 * d[0] + 0.5 * d[1], 0.5 * d[1]};
      ds[j][0] += 1.0;
      ds[j][1] += -3.0;
      s0 = n0;
      s1 = n1;
    }
  }
  return g;
}

// Rows printed by toy_pes.py (toy_pes.out) and the §10.6 per-pair standard deviation of PES.
const double kTruth[kJ] = {-0.45, 0.703125, 3.27832, 4.740051, 5.317939, 5.513242, 5.574314, 5.592586, 5.597899, 5.599413};
const double kTbptt[kJ] = {-0.45, -0.5625, -0.646875, -0.682031, -0.694336, -0.698291, -0.6995, -0.699857, -0.69996, -0.699989};
const double kPesStd[kJ] = {0.636396, 2.08106, 6.054465, 8.247898, 9.436604, 10.226583, 10.86505, 11.437643, 11.973626, 12.483871};
constexpr double kFull = 4.14669, kMeanTbptt = -0.653334, kPesEpisodeStd = 4.94315;

meta::MetaTrainOptions toy_options(int64_t pairs) {
  meta::MetaTrainOptions o;
  o.schedule.horizon = kK * kJ;
  o.schedule.unroll = kK;
  o.schedule.batch = 1;
  o.estimator.es.pairs = pairs;
  o.estimator.es.sigma = 0.01;
  o.schedule.explode_factor = 0;
  return o;
}

meta::Episode toy_episode(uint64_t seed, int64_t length = kK * kJ) {
  meta::Episode e;
  e.batch = std::make_shared<test::ToyBatch>(1);
  e.length = length;
  e.seed = seed;
  return e;
}

// The estimates of one episode, one per truncation (hamlet's window loss is the SUM of the K terms, so each is
// K times the toy's per-truncation derivative).
std::vector<double> run_episode(meta::GradientEstimator& est, learned::LearnedOptimizer& opt, uint64_t seed) {
  std::vector<double> out;
  est.start(toy_episode(seed), opt);
  while (!est.finished()) {
    const meta::MetaGradient g = est.advance(opt);
    REQUIRE(g.window);
    REQUIRE(g.terms == kK);
    out.push_back(g.grads.at(0).item<double>());
  }
  return out;
}

struct Replicates {
  std::vector<double> mean, se;  // per truncation j, over replicates
  double episode_mean = 0, episode_se = 0;
};

Replicates replicate(meta::GradientEstimator& est, learned::LearnedOptimizer& opt, int replicates) {
  std::vector<std::vector<double>> rows;
  for (int r = 0; r < replicates; ++r) rows.push_back(run_episode(est, opt, 1000 + r));
  Replicates out;
  const double m = replicates;
  std::vector<double> episode(replicates, 0.0);
  for (int j = 0; j < kJ; ++j) {
    double s = 0, s2 = 0;
    for (int r = 0; r < replicates; ++r) {
      s += rows[r][j];
      episode[r] += rows[r][j] / kJ;
    }
    const double mean = s / m;
    for (int r = 0; r < replicates; ++r) s2 += (rows[r][j] - mean) * (rows[r][j] - mean);
    out.mean.push_back(mean);
    out.se.push_back(std::sqrt(s2 / (m - 1) / m));
  }
  double s = 0, s2 = 0;
  for (double e : episode) s += e;
  out.episode_mean = s / m;
  for (double e : episode) s2 += (e - out.episode_mean) * (e - out.episode_mean);
  out.episode_se = std::sqrt(s2 / (m - 1) / m);
  return out;
}

}  // namespace

TEST_CASE("ES / PES combination rules give the hand-checked values of pes_formula_check.py") {
  const TensorList xi_old{at::full({1}, 0.02, at::kDouble)}, eps{at::full({1}, 0.01, at::kDouble)};
  // Case A: a reset at step 2 (inclusive cumulative sum), step 3 masked.
  const auto a = meta::pes_combine({0.3, 0.5, 0.0}, {1, 1, 0}, {false, true, false}, xi_old, eps, 0.01);
  CHECK(a.grad[0].item<double>() == Approx(35.0).epsilon(1e-12));
  CHECK(a.xi_next[0].item<double>() == Approx(0.01).epsilon(1e-12));
  CHECK(meta::es_combine({0.3, 0.5, 0.0}, {1, 1, 0}, eps, 0.01)[0].item<double>() == Approx(20.0).epsilon(1e-12));
  // Case B: no reset; the accumulator keeps growing.
  const auto b = meta::pes_combine({0.3, 0.5, 0.2}, {1, 1, 1}, {false, false, false}, xi_old, eps, 0.01);
  CHECK(b.grad[0].item<double>() == Approx(50.0).epsilon(1e-12));
  CHECK(b.xi_next[0].item<double>() == Approx(0.03).epsilon(1e-12));
  // No valid step (LO divides by zero): the task contributes nothing, the accumulator still advances.
  const auto z = meta::pes_combine({0.0}, {0}, {false}, xi_old, eps, 0.01);
  CHECK(z.grad[0].item<double>() == 0.0);
  CHECK(z.xi_next[0].item<double>() == Approx(0.03).epsilon(1e-12));
}

TEST_CASE("toy influence system: the closed-form reference reproduces toy_pes.py's printed answers") {
  const auto g = toy_jacobian();
  double full = 0, tb = 0;
  for (int j = 0; j < kJ; ++j) {
    double truth = 0;
    for (int tau = 0; tau < kJ; ++tau) truth += g[j][tau];
    CHECK(truth == Approx(kTruth[j]).epsilon(2e-6).margin(1e-6));
    CHECK(g[j][j] == Approx(kTbptt[j]).epsilon(2e-6));
    full += truth / kJ;
    tb += g[j][j] / kJ;
  }
  CHECK(full == Approx(kFull).epsilon(2e-6));
  CHECK(tb == Approx(kMeanTbptt).epsilon(2e-6));
}

TEST_CASE("bptt on the toy: each window's meta-gradient is cut at its start boundary (TBPTT_j), full BPTT is exact") {
  const auto g = toy_jacobian();
  test::ToyOptimizer opt(kPhi);
  opt.set_trainable(true);
  const meta::MetaTrainOptions bptt_options = toy_options(1);
  meta::TruncatedBptt bptt(bptt_options.schedule, bptt_options.estimator.bptt, bptt_options.parallel);
  const std::vector<double> est = run_episode(bptt, opt, 0);
  REQUIRE(est.size() == kJ);
  for (int j = 0; j < kJ; ++j) {
    INFO("window " << j);
    // Only φ's use inside window j reaches L_j: the updates before the boundary receive nothing from it.
    CHECK(est[j] == Approx(kK * g[j][j]).epsilon(1e-9));
    if (j > 0) {
      double total = 0;
      for (int tau = 0; tau <= j; ++tau) total += g[j][tau];
      CHECK(std::abs(est[j] - kK * total) > 0.5);
    }
  }
  // One window over the whole episode: exact full-horizon BPTT, K · J · dS/dφ (S = mean over truncations).
  meta::MetaTrainOptions whole = toy_options(1);
  whole.schedule.unroll = kK * kJ;
  meta::TruncatedBptt full(whole.schedule, whole.estimator.bptt, whole.parallel);
  const std::vector<double> one = [&] {
    std::vector<double> out;
    full.start(toy_episode(0), opt);
    while (!full.finished()) out.push_back(full.advance(opt).grads.at(0).item<double>());
    return out;
  }();
  REQUIRE(one.size() == 1);
  double truth = 0;
  for (int j = 0; j < kJ; ++j) {
    for (int tau = 0; tau < kJ; ++tau) truth += g[j][tau];
  }
  // The first loss (at θ0) does not depend on φ, so the full window's gradient is Σ_j Σ_τ K·G[j][τ].
  CHECK(one[0] == Approx(kK * truth).epsilon(1e-9));
  CHECK(one[0] / (kK * kJ) == Approx(kFull).epsilon(2e-6));
}

TEST_CASE("pes is unbiased for the full-horizon gradient and truncated bptt is not, es matches its truncated mean") {
  // N = replicates × pairs perturbation pairs; tolerances are 4 standard errors.
  constexpr int kReplicates = 20, kPairs = 50;
  const double n = kReplicates * kPairs;
  test::ToyOptimizer opt(kPhi);

  const meta::MetaTrainOptions pes_options = toy_options(kPairs);
  meta::PersistentEs pes(pes_options.schedule, pes_options.estimator.es, pes_options.parallel);
  const Replicates p = replicate(pes, opt, kReplicates);
  for (int j = 0; j < kJ; ++j) {
    INFO("truncation " << j << ": PES mean " << p.mean[j] << ", truth " << kK * kTruth[j]);
    // Exact per-pair standard deviation (§10.6 formula, printed by toy_pes.py).
    CHECK(std::abs(p.mean[j] - kK * kTruth[j]) <= 4 * kK * kPesStd[j] / std::sqrt(n));
  }
  const double pes_se = kK * kPesEpisodeStd / std::sqrt(n);
  INFO("PES episode average " << p.episode_mean << " (SE " << pes_se << "), full-horizon truth " << kK * kFull);
  CHECK(std::abs(p.episode_mean - kK * kFull) <= 4 * pes_se);
  // The empirical SE over replicates agrees with the exact one (loosely: 20 replicates).
  CHECK(p.episode_se == Approx(pes_se).epsilon(0.5));

  // Truncated BPTT (exact, deterministic) is biased against the same reference: wrong sign here.
  test::ToyOptimizer opt_b(kPhi);
  opt_b.set_trainable(true);
  const meta::MetaTrainOptions bptt_options = toy_options(1);
  meta::TruncatedBptt bptt(bptt_options.schedule, bptt_options.estimator.bptt, bptt_options.parallel);
  const std::vector<double> b = run_episode(bptt, opt_b, 0);
  double bptt_avg = 0;
  for (double x : b) bptt_avg += x / kJ;
  INFO("TBPTT episode average " << bptt_avg);
  CHECK(bptt_avg == Approx(kK * kMeanTbptt).epsilon(2e-6));
  CHECK(std::abs(bptt_avg - kK * kFull) > 20 * pes_se);

  // Truncated ES: the mean is TBPTT_j (the start state is held constant), within 4 empirical SE.
  const meta::MetaTrainOptions es_options = toy_options(kPairs);
  meta::TruncatedEs es(es_options.schedule, es_options.estimator.es, es_options.parallel);
  const Replicates e = replicate(es, opt, kReplicates);
  for (int j = 0; j < kJ; ++j) {
    INFO("truncation " << j << ": ES mean " << e.mean[j] << " +- " << e.se[j] << ", TBPTT " << kK * kTbptt[j]);
    CHECK(std::abs(e.mean[j] - kK * kTbptt[j]) <= 4 * e.se[j]);
    CHECK(e.se[j] > 0);
  }
  // es / pes leave the optimizer's weight as they found it.
  CHECK(opt.weights()[0].item<double>() == kPhi);
}

TEST_CASE("meta-loss terms: mean, log and clipped (non-finite values count as the bound)") {
  const at::Tensor f = at::tensor({0.5, 2.0, std::nan(""), INFINITY}, at::kDouble);
  meta::MetaTrainOptions o;
  CHECK(at::equal(meta::meta_loss_term(f.narrow(0, 0, 2), o.schedule, 0.7), f.narrow(0, 0, 2)));
  o.schedule.meta_loss = "log";
  const at::Tensor logs = meta::meta_loss_term(f.narrow(0, 0, 2), o.schedule, 0.7);
  CHECK(logs[0].item<double>() == Approx(std::log(0.5)).epsilon(1e-15));
  CHECK(logs[1].item<double>() == Approx(std::log(2.0)).epsilon(1e-15));
  o.schedule.meta_loss = "clipped";
  o.schedule.meta_loss_bound = 1.0;
  CHECK(at::equal(meta::meta_loss_term(f, o.schedule, 0.7), at::tensor({0.5, 1.0, 1.0, 1.0}, at::kDouble)));
  o.schedule.meta_loss_bound = 0.0;  // the episode's start loss
  CHECK(at::equal(meta::meta_loss_term(f, o.schedule, 0.7), at::tensor({0.5, 0.7, 0.7, 0.7}, at::kDouble)));
  o.schedule.meta_loss = "square";
  CHECK_THROWS_WITH(o.validate(), Catch::Contains("meta_train.meta_loss") && Catch::Contains("square"));
}

TEST_CASE("bptt with log and clipped meta-losses on the toy equals the forward-sensitivity derivative") {
  // One window over the episode: ∂/∂φ Σ_t term(ℓ_t), ℓ_t = ½(u_t − 1)², with du/dφ carried forward in doubles.
  const auto reference = [](const std::string& kind, double bound) {
    double u = 0, v = 0, du = 0, dv = 0, total = 0;
    for (int t = 0; t < kK * kJ; ++t) {
      const double loss = 0.5 * (u - 1) * (u - 1), dloss = (u - 1) * du;
      if (kind == "log") total += dloss / loss;
      if (kind == "clipped" && loss < bound) total += dloss;
      const double nu = 0.5 * u + 0.5 * v + kPhi, nv = 0.5 * v - 3.0 * kPhi;
      const double ndu = 0.5 * du + 0.5 * dv + 1.0, ndv = 0.5 * dv - 3.0;
      u = nu, v = nv, du = ndu, dv = ndv;
    }
    return total;
  };
  test::ToyOptimizer opt(kPhi);
  opt.set_trainable(true);
  for (const auto& [kind, bound] : std::vector<std::pair<std::string, double>>{{"log", 0.0}, {"clipped", 0.8}, {"clipped", 0.0}}) {
    INFO(kind << " bound " << bound);
    meta::MetaTrainOptions o = toy_options(1);
    o.schedule.unroll = kK * kJ;
    o.schedule.meta_loss = kind;
    o.schedule.meta_loss_bound = bound;
    meta::TruncatedBptt bptt(o.schedule, o.estimator.bptt, o.parallel);
    bptt.start(toy_episode(0), opt);
    const meta::MetaGradient g = bptt.advance(opt);
    REQUIRE(g.window);
    // bound 0: the start loss ℓ_0 = ½.
    CHECK(g.grads.at(0).item<double>() == Approx(reference(kind, bound > 0 ? bound : 0.5)).epsilon(1e-12));
  }
  // The forward-only members of es / pes record the same terms.
  meta::MetaTrainOptions o = toy_options(1);
  o.schedule.meta_loss = "log";
  meta::Trajectory trajectory;
  trajectory.params = {at::zeros({1, 2}, at::kDouble)};
  const test::ToyBatch batch(1);
  const meta::MemberWindow w = meta::run_member(opt, batch, trajectory, 2, 0.5, o.schedule);
  REQUIRE(w.terms.size() == 3);
  CHECK(w.terms[0] == Approx(std::log(0.5)).epsilon(1e-14));
  CHECK(w.terms[1] == Approx(std::log(0.5 * 0.9 * 0.9)).epsilon(1e-14));  // u_1 = φ = 0.1
}
