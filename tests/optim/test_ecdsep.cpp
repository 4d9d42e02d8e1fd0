#include "support/catch.hpp"

#include <cmath>

#include "hamlet/core/error.hpp"
#include "hamlet/optim/ecdsep.hpp"
#include "optim_fixtures.hpp"
#include "support/test_support.hpp"

using namespace hamlet;
using namespace hamlet::optim;
using hamlet::test::max_abs_diff;
using hamlet::test::row;

namespace {

// One recorded ECDSep step on F(q) = scale·(½‖q‖² + offset).
struct Record {
  double f = 0;          // F before the step
  double c = 0;          // rescale factor
  at::Tensor p;          // momentum after the step ([1, n]; with ν = 0, p after the kick)
  double p2 = 0;         // ‖p‖² after the step
  double p2_start = 0;   // ‖p‖² of the incoming (initialised) state
  double exp_e = 0;
  at::Tensor q;          // parameters after the step
  double energy = 0;
  bool frozen = false;
};

EcdsepOptions table_options(double delta_en, bool cons_en) {
  EcdsepOptions o;
  o.lr = 0.1;
  o.eta = 1.0;
  o.deltaEn = delta_en;
  o.consEn = cons_en;
  o.nu = 0.0;
  return o;
}

std::vector<Record> run_half_square(const EcdsepOptions& options, at::Tensor q, int steps, double offset = 0.0,
                                    double scale = 1.0) {
  Ecdsep opt(options);
  OptimizerState state = opt.init({q});
  std::vector<Record> out;
  for (int t = 0; t < steps; ++t) {
    const at::Tensor f = scale * (0.5 * (q * q).sum(1) + offset);
    auto r = opt.update({q}, {scale * q}, f, state);
    Record rec;
    rec.f = f.item<double>();
    rec.c = r.diagnostics.at("rescale").item<double>();
    rec.p = r.state.slots.at("p")[0];
    rec.p2 = r.state.scalars.at("p2").item<double>();
    rec.p2_start = t == 0 ? options.effective_delta_en() : state.scalars.at("p2").item<double>();
    rec.exp_e = r.state.scalars.at("expE").item<double>();
    rec.q = r.params[0];
    rec.energy = r.diagnostics.at("energy").item<double>();
    rec.frozen = r.diagnostics.at("frozen").item<double>() != 0;
    out.push_back(rec);
    q = r.params[0];
    state = r.state;
  }
  return out;
}

struct Row {
  double f, c, p0, p1, p2, q0, q1;
};

void check_rows(const std::vector<Record>& run, const std::vector<std::pair<int, Row>>& rows) {
  for (const auto& [step, e] : rows) {
    INFO("step " << step);
    const Record& r = run[static_cast<std::size_t>(step - 1)];
    CHECK(r.f == Approx(e.f).margin(1e-9));
    CHECK(r.c == Approx(e.c).margin(1e-9));
    CHECK(max_abs_diff(r.p, row({e.p0, e.p1})) < 1e-9);
    CHECK(r.p2 == Approx(e.p2).margin(1e-9));
    CHECK(max_abs_diff(r.q, row({e.q0, e.q1})) < 1e-9);
  }
}

}  // namespace

TEST_CASE("ecdsep: known answers on F = ½‖q‖² from q0 = (1, -2) (docs/methods.md §7.5)") {
  const at::Tensor q0 = row({1.0, -2.0});
  SECTION("δE = 0, consEn: steps 1-3, p0 = 0") {
    const auto run = run_half_square(table_options(0.0, true), q0, 3);
    check_rows(run, {{1, {2.5, 1.0, -0.04, 0.08, 8.0e-3, 0.9920634921, -1.9841269841}},
                     {2, {2.4604749307, 1.4170391667, -0.0970015667, 0.1940031333, 4.7046519681e-2, 0.9735348852,
                          -1.9470697704}},
                     {3, {2.3694254317, 1.0822909470, -0.1460712997, 0.2921425995, 1.0668412303e-1, 0.9471368739,
                          -1.8942737479}}});
    // Step bound ‖Δq‖ ≤ Δt/√s, with the table's step lengths.
    const double lengths[3] = {0.0177, 0.0414, 0.0590};
    at::Tensor prev = q0;
    for (int t = 0; t < 3; ++t) {
      const double len = (run[t].q - prev).norm().item<double>();
      CHECK(len == Approx(lengths[t]).margin(1e-4));
      CHECK(len <= 0.1);
      prev = run[t].q;
    }
  }
  SECTION("δE = 1, consEn: steps 1-2") {
    const auto run = run_half_square(table_options(1.0, true), q0, 2);
    check_rows(run, {{1, {2.5, 1.0, -0.4872135955, 0.9744271910, 1.1868854382, 0.9554422388, -1.9108844776}},
                     {2, {2.2821746793, 1.0016867478, -0.5299008318, 1.0598016636, 1.4039744578, 0.9113568426,
                          -1.8227136853}}});
    // e^E = V0·(s + δE).
    CHECK(run[0].exp_e == Approx(5.0).margin(1e-12));
    CHECK(run[1].exp_e == Approx(5.0).margin(1e-12));
  }
  SECTION("δE = 1, consEn = false: step 2") {
    const auto run = run_half_square(table_options(1.0, false), q0, 2);
    check_rows(run, {{2, {2.2821746793, 1.0, -0.5290790253, 1.0581580506, 1.3996230752, 0.9113453945,
                          -1.8226907891}}});
  }
}

TEST_CASE("ecdsep: energy-shell invariant, step bound and energy diagnostic over 200 steps") {
  // consEn, δE = 1, F = ½‖q‖² + 1: after the rescale and before the kick, (s + ‖c·p‖²)·V(q) = e^E.
  const auto run = run_half_square(table_options(1.0, true), row({1.0, -2.0}), 200, /*offset=*/1.0);
  const double exp_e = 3.5 * 2.0;
  at::Tensor prev = row({1.0, -2.0});
  int checked = 0;
  double worst = 0;
  for (const auto& r : run) {
    REQUIRE_FALSE(r.frozen);
    CHECK(r.exp_e == Approx(exp_e).epsilon(1e-15));
    CHECK((r.q - prev).norm().item<double>() <= 0.1 * (1 + 1e-12));
    prev = r.q;
    if (exp_e / r.f - 1.0 < 0) continue;  // p2true < 0: no rescale, nothing to check
    worst = std::max(worst, std::abs((1.0 + r.c * r.c * r.p2_start) * r.f / exp_e - 1.0));
    // The diagnostic is H of the incoming state: ln(s + p2) + η ln(F − F0).
    CHECK(r.energy == Approx(std::log(1.0 + r.p2_start) + std::log(r.f)).margin(1e-12));
    ++checked;
  }
  INFO("largest relative shell error " << worst << " over " << checked << " steps");
  CHECK(checked > 100);
  CHECK(worst < 1e-13);
}

TEST_CASE("ecdsep: the code scheme (consEn = false) keeps H within a first-order band") {
  // F = ½‖q‖² + 1, δE = 1, ν = 0, Δt = 0.01 for 2000 steps: max |H − H0| = 6.5e-3 (docs/methods.md §7.5).
  EcdsepOptions o = table_options(1.0, false);
  o.lr = 0.01;
  Ecdsep opt(o);
  at::Tensor q = row({1.0, -2.0});
  OptimizerState state = opt.init({q});
  const double h0 = std::log(2.0) + std::log(3.5);
  double worst = 0;
  for (int t = 0; t < 2000; ++t) {
    auto r = opt.update({q}, {q}, 0.5 * (q * q).sum(1) + 1.0, state);
    q = r.params[0];
    state = r.state;
    const double p2 = per_problem_sum_sq(state.slots.at("p")[0]).item<double>();
    const double h = std::log(1.0 + p2) + std::log(0.5 * (q * q).sum().item<double>() + 1.0);
    worst = std::max(worst, std::abs(h - h0));
  }
  INFO("max |H - H0| = " << worst);
  CHECK(worst < 1e-2);
  CHECK(worst == Approx(6.5e-3).epsilon(0.05));
}

TEST_CASE("ecdsep: scale invariance and weight decay as an energy term") {
  SECTION("F -> 10F with F0 = 0 gives identical iterates (also with noise, same seed)") {
    EcdsepOptions o = table_options(1.0, true);
    o.nu = 1e-3;
    const auto a = run_half_square(o, row({1.0, -2.0}), 30);
    const auto b = run_half_square(o, row({1.0, -2.0}), 30, 0.0, 10.0);
    for (std::size_t t = 0; t < a.size(); ++t) CHECK(max_abs_diff(a[t].q, b[t].q) < 1e-12);
  }
  SECTION("F -> 10F together with F0 -> 10F0 gives identical iterates") {
    EcdsepOptions o = table_options(1.0, true);
    o.F0 = 0.5;
    EcdsepOptions o10 = o;
    o10.F0 = 5.0;
    const auto a = run_half_square(o, row({1.0, -2.0}), 30, 1.0);
    const auto b = run_half_square(o10, row({1.0, -2.0}), 30, 1.0, 10.0);
    for (std::size_t t = 0; t < a.size(); ++t) CHECK(max_abs_diff(a[t].q, b[t].q) < 1e-12);
  }
  SECTION("weight decay wd on F equals wd = 0 on F + ½wd‖q‖² with the matching gradient") {
    // δE = 0: the initial momentum follows the raw gradient without the wd term (as the original), so only p0 = 0
    // makes the two runs start alike.
    const auto q = test::Quadratic::random(1, 4, 41);
    const double wd = 0.3;
    EcdsepOptions o = table_options(0.0, true);
    o.weight_decay = wd;
    o.F0 = -50.0;
    EcdsepOptions plain = o;
    plain.weight_decay = 0;
    Ecdsep with_wd(o), without(plain);
    at::Tensor x = at::ones({1, 4}, at::kDouble), y = x;
    OptimizerState sx = with_wd.init({x}), sy = without.init({y});
    for (int t = 0; t < 20; ++t) {
      auto rx = with_wd.update({x}, {q.grad(x)}, q.loss(x), sx);
      auto ry = without.update({y}, {q.grad(y) + wd * y}, q.loss(y) + 0.5 * wd * (y * y).sum(1), sy);
      x = rx.params[0];
      sx = rx.state;
      y = ry.params[0];
      sy = ry.state;
    }
    CHECK(max_abs_diff(x, y) < 1e-12);
    CHECK(max_abs_diff(x, at::ones({1, 4}, at::kDouble)) > 1e-3);
  }
}

TEST_CASE("ecdsep: edge cases follow the hamlet column of docs/methods.md §7.5") {
  const at::Tensor q0 = row({1.0, -2.0});
  SECTION("F_eff <= F0 skips the step, raises 'frozen' and keeps the counter; other problems advance") {
    EcdsepOptions o = table_options(1.0, true);
    o.F0 = 3.0;  // F(q0) = 2.5 <= F0 for problem 0; problem 1 starts higher
    Ecdsep opt(o);
    const at::Tensor q = at::cat({q0, 3.0 * q0});
    auto r = opt.update({q}, {q}, 0.5 * (q * q).sum(1), opt.init({q}));
    CHECK(at::equal(r.params[0][0], q[0]));
    CHECK(r.diagnostics.at("frozen")[0].item<double>() == 1.0);
    CHECK(r.diagnostics.at("frozen")[1].item<double>() == 0.0);
    CHECK(std::isnan(r.diagnostics.at("energy")[0].item<double>()));
    CHECK(r.state.scalars.at("iteration")[0].item<double>() == 0.0);
    CHECK(r.state.scalars.at("iteration")[1].item<double>() == 1.0);
    CHECK(at::isfinite(r.state.slots.at("p")[0]).all().item<bool>());
    // Problem 1 moved exactly as it would alone.
    const at::Tensor q1 = 3.0 * q0;
    auto alone = opt.update({q1}, {q1}, 0.5 * (q1 * q1).sum(1), opt.init({q1}));
    CHECK(max_abs_diff(r.params[0][1], alone.params[0][0]) < 1e-15);
  }
  SECTION("a skip at iteration 0 repeats the initialisation on the next call") {
    Ecdsep opt(table_options(1.0, true));
    const at::Tensor loss = 0.5 * (q0 * q0).sum(1);
    auto skipped = opt.update({q0}, {q0}, at::zeros({1}, at::kDouble), opt.init({q0}));
    CHECK(skipped.diagnostics.at("frozen").item<double>() == 1.0);
    CHECK(at::equal(skipped.params[0], q0));
    auto after = opt.update({q0}, {q0}, loss, skipped.state);
    auto fresh = opt.update({q0}, {q0}, loss, opt.init({q0}));
    CHECK(max_abs_diff(after.params[0], fresh.params[0]) < 1e-15);
    CHECK(max_abs_diff(after.state.slots.at("p")[0], fresh.state.slots.at("p")[0]) < 1e-15);
  }
  SECTION("V <= eps2 skips the step") {
    Ecdsep opt(table_options(1.0, true));
    auto r = opt.update({q0}, {q0}, at::full({1}, 1e-50, at::kDouble), opt.init({q0}));
    CHECK(r.diagnostics.at("frozen").item<double>() == 1.0);
    CHECK(at::equal(r.params[0], q0));
  }
  SECTION("a zero gradient at initialisation gives p = 0, not NaN (also with noise)") {
    EcdsepOptions o = table_options(1.0, true);
    o.nu = 1e-2;
    Ecdsep opt(o);
    const at::Tensor zero = row({0.0, 0.0});
    auto r = opt.update({zero}, {zero}, at::ones({1}, at::kDouble), opt.init({zero}));
    CHECK(at::equal(r.params[0], zero));
    CHECK(at::equal(r.state.slots.at("p")[0], zero));
    CHECK(r.diagnostics.at("frozen").item<double>() == 0.0);
  }
  SECTION("s != 1 forces δE = 1") {
    EcdsepOptions o = table_options(0.0, true);
    o.s = 2.0;
    Ecdsep opt(o);
    auto r = opt.update({q0}, {q0}, 0.5 * (q0 * q0).sum(1), opt.init({q0}));
    CHECK(r.state.scalars.at("expE").item<double>() == Approx(2.5 * 3.0).margin(1e-12));
    CHECK(r.diagnostics.at("energy").item<double>() == Approx(std::log(3.0) + std::log(2.5)).margin(1e-12));
  }
  SECTION("a tensor without a gradient is skipped everywhere") {
    Ecdsep opt(table_options(1.0, true));
    const at::Tensor other = row({7.0});
    auto r = opt.update({q0, other}, {q0, at::Tensor()}, 0.5 * (q0 * q0).sum(1), opt.init({q0, other}));
    CHECK(at::equal(r.params[1], other));
    auto alone = opt.update({q0}, {q0}, 0.5 * (q0 * q0).sum(1), opt.init({q0}));
    CHECK(max_abs_diff(r.params[0], alone.params[0]) < 1e-15);
  }
  SECTION("update() requires the loss") {
    Ecdsep opt;
    CHECK(opt.needs_loss());
    CHECK_THROWS_AS(opt.update({q0}, {q0}, at::Tensor(), opt.init({q0})), Error);
  }
}

TEST_CASE("ecdsep: direction noise rotates p, keeps its norm, and is reproducible from the seed") {
  EcdsepOptions o = table_options(1.0, true);
  o.nu = 0.05;
  const auto q = test::Quadratic::random(3, 6, 51);
  const at::Tensor start = at::zeros({3, 6}, at::kDouble);
  const auto a = test::run_quadratic(Ecdsep(o), q, start, 25);
  const auto b = test::run_quadratic(Ecdsep(o), q, start, 25);
  CHECK(at::equal(a, b));
  EcdsepOptions other = o;
  other.seed = 1;
  CHECK(max_abs_diff(test::run_quadratic(Ecdsep(other), q, start, 25), a) > 1e-8);
  EcdsepOptions quiet = o;
  quiet.nu = 0;
  CHECK(max_abs_diff(test::run_quadratic(Ecdsep(quiet), q, start, 25), a) > 1e-8);

  // One step: the stored ‖p‖² is the kick's, and p differs from the noiseless kick only in direction.
  Ecdsep noisy(o), clean(quiet);
  const at::Tensor theta = at::ones({3, 6}, at::kDouble);
  const at::Tensor f = q.loss(theta) - q.min_loss();
  auto rn = noisy.update({theta}, {q.grad(theta)}, f, noisy.init({theta}));
  auto rc = clean.update({theta}, {q.grad(theta)}, f, clean.init({theta}));
  CHECK(max_abs_diff(rn.params[0], rc.params[0]) < 1e-15);  // the drift precedes the noise
  CHECK(max_abs_diff(per_problem_sum_sq(rn.state.slots.at("p")[0]), rc.state.scalars.at("p2")) < 1e-12);
  CHECK(max_abs_diff(rn.state.scalars.at("p2"), rc.state.scalars.at("p2")) < 1e-12);
  CHECK(max_abs_diff(rn.state.slots.at("p")[0], rc.state.slots.at("p")[0]) > 1e-4);
  // The stream advances with the call count stored in the state.
  OptimizerState later = noisy.init({theta});
  later.step = 5;
  auto r5 = noisy.update({theta}, {q.grad(theta)}, f, later);
  CHECK(max_abs_diff(r5.state.slots.at("p")[0], rn.state.slots.at("p")[0]) > 1e-6);
}

TEST_CASE("ecdsep converges on a quadratic with F0 = F*") {
  // Energy conservation makes ‖p‖ grow as F − F0 shrinks, and the drift 2Δt·p/(s + ‖p‖²) shrinks with it, so the
  // iterate settles into the minimum.
  const auto q = test::Quadratic::random(3, 8, 61);
  const at::Tensor start = at::zeros({3, 8}, at::kDouble);
  EcdsepOptions o;
  o.lr = 0.1;
  std::vector<at::Tensor> gaps;
  test::run_quadratic(Ecdsep(o), q, start, 500, &gaps);
  const at::Tensor gap0 = q.loss(start) - q.min_loss();
  const double ratio = (gaps.back() / gap0).max().item<double>();
  INFO("worst final/initial gap ratio " << ratio);
  CHECK(ratio < 1e-3);
}
