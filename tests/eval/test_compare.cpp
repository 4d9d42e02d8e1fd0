// `hamlet compare` (eval/compare.hpp) against tables worked out by hand for tiny synthetic run files.
#include "support/catch.hpp"

#include <cmath>
#include <limits>
#include <map>
#include <vector>

#include "hamlet/core/options_json.hpp"
#include "hamlet/eval/compare.hpp"
#include "hamlet/eval/compare_format.hpp"
#include "hamlet/eval/drift.hpp"
#include "hamlet/io/h5.hpp"
#include "run_fixtures.hpp"
#include "support/checks.hpp"
#include "support/test_support.hpp"

using namespace hamlet;

namespace {

using Method = test::RunMethod;
using test::write_run;

double mean(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return s / static_cast<double>(v.size());
}
double var(const std::vector<double>& v) {
  const double m = mean(v);
  double s = 0;
  for (double x : v) s += (x - m) * (x - m);
  return s / static_cast<double>(v.size() - 1);
}

const eval::ComparisonRow& row(const eval::Comparison& c, const std::string& name) { return test::named(c.rows, name); }

}  // namespace

TEST_CASE("compare: means, two-level SEs, paired deltas against the validation-chosen reference") {
  test::TempDir dir;
  // adam has the lower *test* mean, nag the better *validation* score: the reference must be nag.
  const std::vector<double> adam = {0.2, 0.3, 0.1, 0.2}, nag = {0.4, 0.5, 0.3, 0.6};
  write_run((dir / "baselines.h5").string(),
            {{"adam", adam, R"({"beta1": "0.9", "lr": "0.03"})", 0.6}, {"nag", nag, "lr=1, momentum=0.9", 0.5}});
  const std::vector<std::vector<double>> lstm = {{0.5, 0.7, 0.2, 0.9}, {0.6, 0.9, 0.1, 1.2}, {0.2, 0.4, 0.3, 0.5}};
  const std::vector<std::vector<double>> phnn = {{0.3, 0.3, 0.3, 0.3}, {0.4, 0.5, 0.3, 0.4}, {0.3, 0.2, 0.4, 0.3}};
  std::vector<std::string> files = {(dir / "baselines.h5").string()};
  for (int s = 0; s < 3; ++s) {
    files.push_back((dir / ("learned_seed" + std::to_string(s) + ".h5")).string());
    write_run(files.back(), {{"lstm", lstm[s], R"({"out_mul": "0.1", "preprocess": "true"})"},
                             {"phnn", phnn[s], "mass=constant, out_mul=0.001"}});
  }
  const eval::RunSet runs = eval::read_runs(files);
  REQUIRE(runs.methods.size() == 4);
  CHECK(runs.methods[2].final_loss.sizes() == at::IntArrayRef({3, 4}));

  eval::CompareOptions o;
  o.published = {{"adam", 0.35}, {"lstm", 0.29}};
  const eval::Comparison c = eval::compare(runs, o);
  CHECK(c.reference == "nag");
  CHECK_THAT(c.reference_reason, Catch::Contains("best validation score (0.500"));

  // Hand-designed rows: ordinary mean ± s/√N.
  const auto& a = row(c, "adam");
  CHECK_FALSE(a.learned);
  CHECK(a.scale == "lr 0.03");
  CHECK(a.final_loss.mean == Approx(0.2));
  CHECK(a.final_loss.se == Approx(std::sqrt(var(adam) / 4.0)));
  std::vector<double> d_adam;
  for (int i = 0; i < 4; ++i) d_adam.push_back(adam[i] - nag[i]);
  REQUIRE(a.delta);
  CHECK(a.delta->mean == Approx(-0.25));
  CHECK(a.delta->se == Approx(std::sqrt(var(d_adam) / 4.0)));
  CHECK(a.verdict == eval::Verdict::kABetter);  // -0.25 ± 0.05
  CHECK_FALSE(row(c, "nag").delta);

  // LSTM, 3 seeds: SE² = var(a_i)/N + var(m_s)/S, Δ SE² = var(d_i)/N + var(m_s)/S.
  std::vector<double> a_i, d_i, m_s;
  for (int i = 0; i < 4; ++i) {
    a_i.push_back((lstm[0][i] + lstm[1][i] + lstm[2][i]) / 3.0);
    d_i.push_back(a_i.back() - nag[i]);
  }
  for (const auto& seed : lstm) m_s.push_back(mean(seed));
  const auto& l = row(c, "lstm");
  CHECK(l.learned);
  CHECK(l.scale == "out_mul 0.1");
  CHECK(l.final_loss.seeds == 3);
  CHECK(l.final_loss.mean == Approx(mean(a_i)));
  CHECK(l.final_loss.se == Approx(std::sqrt(var(a_i) / 4.0 + var(m_s) / 3.0)));
  CHECK(l.delta->mean == Approx(mean(d_i)));
  CHECK(l.delta->se == Approx(std::sqrt(var(d_i) / 4.0 + var(m_s) / 3.0)));
  CHECK(l.verdict == eval::Verdict::kTie);
  CHECK(l.seed_means.size() == 3);
  CHECK(l.seed_means[1] == Approx(0.7));
  // vs paper: joint SE √(SE² + sd²/100) with sd the per-problem SD of the seed-averaged losses.
  REQUIRE(l.published);
  CHECK(l.vs_published == Approx(mean(a_i) - 0.29));
  CHECK(l.vs_published_se == Approx(std::sqrt(l.final_loss.se * l.final_loss.se + var(a_i) / 100.0)));

  // Learned against learned: both seed terms.
  REQUIRE(c.learned_pairs.size() == 1);
  std::vector<double> p_i, dp_i, pm_s;
  for (int i = 0; i < 4; ++i) {
    p_i.push_back((phnn[0][i] + phnn[1][i] + phnn[2][i]) / 3.0);
    dp_i.push_back(a_i[i] - p_i[i]);
  }
  for (const auto& seed : phnn) pm_s.push_back(mean(seed));
  CHECK(c.learned_pairs[0].a == "lstm");
  CHECK(c.learned_pairs[0].delta.mean == Approx(mean(dp_i)));
  CHECK(c.learned_pairs[0].delta.se == Approx(std::sqrt(var(dp_i) / 4.0 + var(m_s) / 3.0 + var(pm_s) / 3.0)));

  const std::string md = eval::to_markdown(c);
  CHECK_THAT(md, Catch::Contains("Δ vs nag (± SE)"));
  CHECK_THAT(md, Catch::Contains("| adam | lr 0.03 | — | 0.200 ± 0.041 |"));
  CHECK_THAT(md, Catch::Contains("**-0.250 ± 0.050** | beats"));
  CHECK_THAT(md, Catch::Contains("| lstm | out_mul 0.1 | 3: 0.575 / 0.700 / 0.350 |"));
  CHECK_THAT(md, Catch::Contains("| nag | lr 1 | — | 0.450 ± 0.065 | 0.450 | 0.950 | — | reference |"));
  const std::string csv = eval::to_csv(c);
  CHECK_THAT(csv, Catch::Contains("adam,false,lr 0.03,1,4,"));
  const std::string json = eval::to_json(c);
  CHECK_THAT(json, Catch::Contains("\"reference\": \"nag\""));

  // --reference=NAME fixes the reference.
  o.reference = "adam";
  CHECK(eval::compare(runs, o).reference == "adam");
  o.reference = "adamw";
  CHECK_THROWS_WITH(eval::compare(runs, o), Catch::Contains("no such method in the run files (adam, nag, lstm, phnn)"));
}

TEST_CASE("compare: bold marks and verdicts at exactly 2 SE on each side") {
  test::TempDir dir;
  // Against a reference of zeros on 2 problems, d = (3, 1) has D = 2 and SE = 1: exactly 2 SE, a tie.
  write_run((dir / "run.h5").string(),
            {{"zero", {0.0, 0.0}, "lr=1"},
             {"up", {3.0, 1.0}, "lr=1"},
             {"down", {-3.0, -1.0}, "lr=1"},
             {"beyond", {3.0, 1.1}, "lr=1"},
             {"below", {-3.0, -1.1}, "lr=1"}},
            2);
  eval::CompareOptions o;
  o.reference = "zero";
  const auto c = eval::compare(eval::read_runs({(dir / "run.h5").string()}), o);
  CHECK(row(c, "up").delta->mean == 2.0);
  CHECK(row(c, "up").delta->se == 1.0);
  CHECK(row(c, "up").verdict == eval::Verdict::kTie);
  CHECK(row(c, "down").verdict == eval::Verdict::kTie);
  CHECK(row(c, "beyond").verdict == eval::Verdict::kBBetter);
  CHECK(row(c, "below").verdict == eval::Verdict::kABetter);
  const std::string md = eval::to_markdown(c);
  CHECK_THAT(md, Catch::Contains("| 2.000 ± 1.000 | tie |"));
  CHECK_THAT(md, Catch::Contains("| -2.000 ± 1.000 | tie |"));
  CHECK_THAT(md, Catch::Contains("| **2.050 ± 0.950** | loses |"));
  CHECK_THAT(md, Catch::Contains("| **-2.050 ± 0.950** | beats |"));
  // Without a tuned method the validation reference cannot be chosen: a clear error.
  o.reference = "validation";
  CHECK_THROWS_WITH(eval::compare(eval::read_runs({(dir / "run.h5").string()}), o),
                    Catch::Contains("--reference=NAME"));
}

TEST_CASE("compare refuses files that do not pair, one seed says problem noise only") {
  test::TempDir dir;
  const std::string a = (dir / "a.h5").string(), b = (dir / "b.h5").string(), q = (dir / "q.h5").string();
  write_run(a, {{"sgd", {1, 2, 3, 4}, "lr=0.1", 0.5}, {"lstm", {1, 1, 1, 2}, "out_mul=1"}});
  write_run(b, {{"sgd", {1, 2, 3, 4}, "lr=0.1", 0.5}}, 4);
  write_run(q, {{"lstm", {1, 1, 1}, "out_mul=1"}}, 3);
  CHECK_THROWS_WITH(eval::read_runs({a, q}), Catch::Contains("number of problems is '3' but "));
  CHECK_THROWS_WITH(eval::read_runs({a, b}), Catch::Contains("hand-designed method 'sgd' appears in 2 files"));
  const auto c = eval::compare(eval::read_runs({a}), eval::CompareOptions());
  CHECK(row(c, "lstm").final_loss.seeds == 1);
  CHECK_THAT(eval::to_markdown(c), Catch::Contains("1 (problem noise only)"));
}

TEST_CASE("drift: a rerun against the committed run, method by method") {
  test::TempDir dir;
  const std::string committed = (dir / "committed.h5").string(), rerun = (dir / "rerun.h5").string();
  write_run(committed, {{"sgd", {1.0, 2.0, 3.0, 4.0}, "lr=0.1"}, {"lstm", {1.0, 1.0, 1.0, 1.0}, "out_mul=1"}});
  write_run(rerun, {{"sgd", {1.0, 2.0, 3.0, 4.0}, "lr=0.1"}, {"lstm", {1.1, 1.0, 0.9, 1.2}, "out_mul=1"}});
  const eval::Drift d = eval::drift(committed, rerun, 0.05);
  REQUIRE(d.rows.size() == 2);
  CHECK(d.rows[0].name == "sgd");
  CHECK(d.rows[0].max_final == 0.0);
  CHECK(d.rows[0].moved == 0);
  const auto& l = d.rows[1];
  CHECK(l.max_final == Approx(0.2));
  CHECK(l.max_step0 == Approx(0.2));  // write_run's step 0 is final + 1
  CHECK(l.delta.mean == Approx(0.05));
  CHECK(l.moved == 3);                // 0.1, 0.1 and 0.2 exceed 0.05; 0 does not
  CHECK(l.committed_se == 0.0);
  CHECK(l.shift_in_se == 0.0);        // undefined against a zero SE: reported as 0
  CHECK_THAT(eval::to_markdown(d), Catch::Contains("| lstm | 2.0e-01 | 2.0e-01 | 1.000 → 1.050 | +0.050 ± 0.065 | +0.00 | 3/4 |"));
  const std::string other = (dir / "other.h5").string();
  write_run(other, {{"sgd", {1.0, 2.0, 3.0}, "lr=0.1"}}, 3);
  CHECK_THROWS_WITH(eval::drift(committed, other), Catch::Contains(other + ": number of problems is '3' but " +
                                                                    committed + " has '4'"));
}

TEST_CASE("compare --in=FILE:LABEL: runs of one optimizer become rows by label, their files that row's seeds") {
  test::TempDir dir;
  // phnn meta-trained by two estimators, two seeds each, in files that all name the method "phnn".
  const std::vector<std::vector<double>> bptt = {{0.1, 0.2, 0.3, 0.2}, {0.2, 0.2, 0.4, 0.2}};
  const std::vector<std::vector<double>> es = {{1.0, 2.0, 1.0, 2.0}, {3.0, 2.0, 3.0, 4.0}};
  std::vector<eval::RunInput> inputs;
  for (int s = 0; s < 2; ++s) {
    const std::string b = (dir / ("bptt_seed" + std::to_string(s) + ".h5")).string();
    const std::string e = (dir / ("es_seed" + std::to_string(s) + ".h5")).string();
    write_run(b, {{"phnn", bptt[s], "out_mul=0.01"}});
    write_run(e, {{"phnn", es[s], "out_mul=0.01"}});
    inputs.push_back(eval::parse_run_input(b + ":phnn bptt"));
    inputs.push_back(eval::parse_run_input(e + ":phnn es"));
  }
  const eval::RunSet runs = eval::read_runs(inputs);
  REQUIRE(runs.methods.size() == 2);
  CHECK(runs.methods[0].name == "phnn bptt");
  CHECK(runs.methods[1].name == "phnn es");
  CHECK(runs.methods[1].files == std::vector<std::string>{(dir / "es_seed0.h5").string(), (dir / "es_seed1.h5").string()});
  eval::CompareOptions o;
  o.reference = "phnn bptt";
  const auto c = eval::compare(runs, o);
  const auto& r = row(c, "phnn es");
  CHECK(r.learned);
  CHECK(r.final_loss.seeds == 2);
  // Per-seed means 1.5 and 3.0; seed-averaged problems (2, 2, 2, 3): mean 2.25, s² = 0.25,
  // SE² = 0.25 / 4 + var(1.5, 3.0) / 2 = 0.0625 + 1.125 / 2 = 0.625.
  CHECK(r.seed_means == std::vector<double>{1.5, 3.0});
  CHECK(r.final_loss.mean == Approx(2.25));
  CHECK(r.final_loss.se == Approx(std::sqrt(0.625)));
  // Δ against the bptt row: per-seed bptt means 0.2 and 0.25, seed-averaged (0.15, 0.2, 0.35, 0.2);
  // d_i = (1.85, 1.8, 1.65, 2.8): D = 2.025, s_d²/N = var(d)/4, plus v_es/2 + v_bptt/2.
  const std::vector<double> d = {1.85, 1.8, 1.65, 2.8};
  CHECK(r.delta->mean == Approx(mean(d)));
  CHECK(r.delta->se == Approx(std::sqrt(var(d) / 4 + 1.125 / 2 + var({0.2, 0.25}) / 2)));
  CHECK(r.verdict == eval::Verdict::kBBetter);
  CHECK_THAT(eval::to_markdown(c), Catch::Contains("| phnn es | out_mul 0.01 | 2: 1.500 / 3.000 | 2.250 ± 0.791 |"));
  // Without labels the four files are one method with four seeds.
  std::vector<std::string> plain;
  for (const auto& in : inputs) plain.push_back(in.path);
  CHECK(eval::read_runs(plain).methods.size() == 1);
  CHECK(eval::read_runs(plain).methods[0].files.size() == 4);
}

TEST_CASE("compare labels: the {method} placeholder, one-method labels, and how FILE:LABEL splits") {
  test::TempDir dir;
  const std::string two = (dir / "two.h5").string(), base = (dir / "base.h5").string();
  write_run(two, {{"phnn", {1, 1, 1, 1}, "out_mul=1"}, {"lstm", {2, 2, 2, 2}, "out_mul=1"}});
  write_run(base, {{"adam", {3, 3, 3, 3}, "lr=0.1"}});
  const auto runs = eval::read_runs({eval::RunInput{two, "{method} (e10)"}, eval::RunInput{base, ""}});
  REQUIRE(runs.methods.size() == 3);
  CHECK(runs.methods[0].name == "phnn (e10)");
  CHECK(runs.methods[1].name == "lstm (e10)");
  CHECK(runs.methods[2].name == "adam");
  CHECK_THROWS_WITH(eval::read_runs({eval::RunInput{two, "e10"}}),
                    Catch::Contains("the label 'e10' names one row but the file holds 2 methods (phnn, lstm)"));
  // A relabelled hand-designed optimizer is still one file per row.
  CHECK_THROWS_WITH(eval::read_runs({eval::RunInput{base, "x"}, eval::RunInput{base, "x"}}),
                    Catch::Contains("hand-designed method 'x' appears in 2 files"));
  CHECK(eval::row_name("{method} es, {method}", "phnn") == "phnn es, phnn");
  const auto a = eval::parse_run_input("runs/a.h5:phnn bptt");
  CHECK(a.path == "runs/a.h5");
  CHECK(a.label == "phnn bptt");
  CHECK(eval::parse_run_input("runs/a.h5").label.empty());
  const auto colon = eval::parse_run_input("odd:name.h5:");
  CHECK(colon.path == "odd:name.h5");
  CHECK(colon.label.empty());
  CHECK_THROWS_WITH(eval::parse_run_input(":label"), Catch::Contains("no file before the label"));
}

TEST_CASE("compare: a learned row whose seeds ran at different out_mul shows each seed's value") {
  test::TempDir dir;
  std::vector<std::string> files;
  const std::vector<std::string> scales = {"0.3", "0.1", "0.3"};
  for (int s = 0; s < 3; ++s) {
    files.push_back((dir / ("learned_seed" + std::to_string(s) + ".h5")).string());
    write_run(files.back(), {{"lstm", {1, 2, 3, 4}, R"({"out_mul": ")" + scales[s] + R"("})"}});
  }
  const std::string base = (dir / "baselines.h5").string();
  write_run(base, {{"adam", {1, 1, 1, 1}, "lr=0.1", 0.5}});
  std::vector<std::string> inputs = {base};
  inputs.insert(inputs.end(), files.begin(), files.end());
  const auto c = eval::compare(eval::read_runs(inputs), eval::CompareOptions{});
  CHECK(row(c, "lstm").scale == "out_mul 0.3 / 0.1 / 0.3");
  CHECK(row(c, "adam").scale == "lr 0.1");
  // All seeds at one scale: the value once.
  const auto same = eval::compare(eval::read_runs({base, files[0], files[2]}), eval::CompareOptions{});
  CHECK(row(same, "lstm").scale == "out_mul 0.3");
}

TEST_CASE("compare: two rows that evaluate the same weights seed by seed are paired by seed") {
  test::TempDir dir;
  // Three weight files (their contents identify them) and an unrelated set for a third row.
  std::filesystem::create_directories(dir / "wdir");
  std::vector<std::string> weights, moved, other;
  for (int s = 0; s < 3; ++s) {
    weights.push_back((dir / "wdir" / ("w" + std::to_string(s) + ".h5")).string());
    // The same file as another clone recorded it: found by its tail wdir/wS.h5 under a directory above the run file.
    moved.push_back("/elsewhere/clone/wdir/w" + std::to_string(s) + ".h5");
    other.push_back((dir / ("v" + std::to_string(s) + ".h5")).string());
    for (const auto& [path, value] : {std::pair{weights.back(), 1.0 + s}, std::pair{other.back(), 10.0 + s}}) {
      io::H5Writer w(path);
      w.write("/w", at::full({2}, value, at::kDouble));
      w.commit();
    }
  }
  const std::vector<std::vector<double>> trained = {{1, 2, 3, 4}, {2, 3, 4, 5}, {0, 1, 2, 3}};
  const std::vector<std::vector<double>> tuned = {{0.9, 1.8, 3.0, 3.9}, {1.9, 2.8, 4.0, 4.9}, {-0.1, 0.8, 2.0, 2.9}};
  std::vector<eval::RunInput> inputs;
  const std::string base = (dir / "baselines.h5").string();
  write_run(base, {{"adam", {1, 1, 1, 1}, "lr=0.1", 0.5}});
  inputs.push_back({base, ""});
  for (int s = 0; s < 3; ++s) {
    const std::string f = (dir / ("trained" + std::to_string(s) + ".h5")).string();
    const std::string g = (dir / ("tuned" + std::to_string(s) + ".h5")).string();
    const std::string h = (dir / ("other" + std::to_string(s) + ".h5")).string();
    write_run(f, {{"lstm", trained[s], R"({"out_mul": "1", "weights": ")" + weights[s] + R"("})"}});
    write_run(g, {{"lstm", tuned[s], R"({"out_mul": "0.3", "weights": ")" + moved[s] + R"("})"}});
    write_run(h, {{"lstm", tuned[s], R"({"out_mul": "0.3", "weights": ")" + other[s] + R"("})"}});
    inputs.push_back({f, "lstm (trained)"});
    inputs.push_back({g, "lstm (tuned)"});
    inputs.push_back({h, "lstm (other)"});
  }
  const auto c = eval::compare(eval::read_runs(inputs), eval::CompareOptions{});
  REQUIRE(c.learned_pairs.size() == 3);
  const auto& same = c.learned_pairs[0];  // trained − tuned
  CHECK(same.a == "lstm (trained)");
  CHECK(same.b == "lstm (tuned)");
  CHECK(same.seed_paired);
  // Per-seed differences: 0.1, 0.2, 0, 0.1 in every seed, so the seed term is 0 and SE = sd(d_i)/2.
  const std::vector<double> d = {0.1, 0.2, 0.0, 0.1};
  CHECK(same.delta.mean == Approx(0.1).epsilon(1e-12));
  CHECK(same.delta.se == Approx(std::sqrt(var(d) / 4.0)).epsilon(1e-12));
  CHECK(same.verdict == eval::Verdict::kBBetter);
  // Other weights: the unpaired two-level SE, which carries both rows' seed spread (v = 1 each) and calls it a tie.
  const auto& unrelated = c.learned_pairs[1];  // trained − other
  CHECK(unrelated.b == "lstm (other)");
  CHECK_FALSE(unrelated.seed_paired);
  CHECK(unrelated.delta.se == Approx(std::sqrt(var(d) / 4.0 + 1.0 / 3.0 + 1.0 / 3.0)).epsilon(1e-12));
  CHECK(unrelated.verdict == eval::Verdict::kTie);
  CHECK_THAT(eval::to_markdown(c), Catch::Contains("**0.100 ± 0.041** (paired by seed) | lstm (tuned) beats lstm (trained)"));
}

TEST_CASE("compare: a learned row's protocol cell shows meta_lr and cut trajectories, per seed where they differ") {
  test::TempDir dir;
  const std::string base = (dir / "baselines.h5").string();
  write_run(base, {{"adam", {1, 1, 1, 1}, "lr=0.1", 0.5}});
  const std::vector<std::string> lrs = {"0.01", "0.003", "0.01"}, cuts = {"2", "0", ""};
  std::vector<std::string> files;
  for (int s = 0; s < 3; ++s) {
    const std::string w = (dir / ("w" + std::to_string(s) + ".h5")).string();
    io::H5Writer weights(w);
    weights.write("/weights/x", at::full({1}, 1.0 + s, at::kDouble));
    weights.set_attribute("/", "meta_train",
                          options_to_json({{"epochs", "3"}, {"trajectories", "10"}, {"meta_lr", lrs[s]},
                                           {"estimator", "bptt"}, {"unroll", "20"}}));
    if (!cuts[s].empty()) weights.set_attribute("/", "cut_trajectories", cuts[s]);  // older files lack it
    weights.commit();
    files.push_back((dir / ("learned_seed" + std::to_string(s) + ".h5")).string());
    write_run(files.back(), {{"lstm", {1, 2, 3, 4}, R"({"out_mul": "0.1", "weights": ")" + w + R"("})"}});
  }
  const auto c = eval::compare(eval::read_runs({base, files[0], files[1], files[2]}), eval::CompareOptions{});
  CHECK(row(c, "lstm").protocol ==
        "budget 30 trajectories, estimator=bptt, unroll=20, meta_lr=0.01 / 0.003 / 0.01, cut_trajectories=2 / 0 / ?");
  // Seeds that agree: each value once; no weight file records the counter: no entry.
  const auto agree = eval::compare(eval::read_runs({base, files[0], files[2]}), eval::CompareOptions{});
  CHECK(row(agree, "lstm").protocol == "budget 30 trajectories, estimator=bptt, unroll=20, meta_lr=0.01, cut_trajectories=2 / ?");
  const auto none = eval::compare(eval::read_runs({base, files[2]}), eval::CompareOptions{});
  CHECK(row(none, "lstm").protocol == "budget 30 trajectories, estimator=bptt, unroll=20, meta_lr=0.01");
  CHECK(row(c, "adam").protocol == "—");
  // A weight file that predates the estimator option: the default the caller names fills the cell.
  const std::string old_weights = (dir / "old.h5").string();
  {
    io::H5Writer weights(old_weights);
    weights.write("/weights/x", at::full({1}, 7.0, at::kDouble));
    weights.set_attribute("/", "meta_train", options_to_json({{"epochs", "3"}, {"trajectories", "10"}}));
    weights.commit();
  }
  const std::string old_run = (dir / "learned_old.h5").string();
  write_run(old_run, {{"lstm", {1, 2, 3, 4}, R"({"out_mul": "0.1", "weights": ")" + old_weights + R"("})"}});
  CHECK(row(eval::compare(eval::read_runs({base, old_run}), eval::CompareOptions{}), "lstm").protocol ==
        "budget 30 trajectories");
  eval::CompareOptions with_default;
  with_default.protocol_defaults = {{"estimator", "bptt"}};
  CHECK(row(eval::compare(eval::read_runs({base, old_run}), with_default), "lstm").protocol ==
        "budget 30 trajectories, estimator=bptt");
}

TEST_CASE("compare: runs that end no lower than they started are counted, NaN and exact ties included") {
  test::TempDir dir;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  // Problems start at 2, 2, 2, 2. sgd: one problem worse (3), one unchanged (2) -> 2 of 4.
  write_run((dir / "baselines.h5").string(),
            {{"sgd", {1.0, 3.0, 2.0, 0.5}, "lr=0.1", 0.5, {2, 2, 2, 2}}});
  // lstm, 2 seeds: seed 0 one finite blow-up (1e3); seed 1 one NaN and one problem just below its start -> 2 of 8.
  const std::string s0 = (dir / "learned_seed0.h5").string(), s1 = (dir / "learned_seed1.h5").string();
  write_run(s0, {{"lstm", {1e3, 1.0, 1.0, 1.0}, "out_mul=1", -1, {2, 2, 2, 2}}});
  write_run(s1, {{"lstm", {nan, 1.999, 1.0, 1.0}, "out_mul=1", -1, {2, 2, 2, 2}}});
  const eval::Comparison c = eval::compare(eval::read_runs({(dir / "baselines.h5").string(), s0, s1}), {});
  CHECK(row(c, "sgd").above_start == 2);
  CHECK(row(c, "sgd").runs == 4);
  CHECK(row(c, "lstm").above_start == 2);
  CHECK(row(c, "lstm").runs == 8);
  CHECK(row(c, "lstm").non_finite == 1);
  const std::string md = eval::to_markdown(c);
  CHECK_THAT(md, Catch::Contains("| non-finite | final ≥ start |"));
  CHECK_THAT(md, Catch::Contains("| 0/4 | 2/4 |"));
  CHECK_THAT(md, Catch::Contains("| 1/4 | 2/8 |"));
  CHECK_THAT(eval::to_csv(c), Catch::Contains(",non_finite,above_start,runs\n"));
  CHECK_THAT(eval::to_json(c), Catch::Contains("\"above_start\": 2"));
}
