// The held-out suite's aggregate (eval/suite.hpp): the interquartile mean and quantiles against values worked out by
// hand, the bootstrap interval's properties, and the per-task scores and divergence counts of a suite of tiny run
// files whose answers are computed below from their numbers.
#include "support/catch.hpp"

#include <cmath>
#include <fstream>
#include <limits>
#include <numeric>
#include <vector>

#include "hamlet/eval/suite.hpp"
#include "hamlet/io/h5.hpp"
#include "run_fixtures.hpp"
#include "support/checks.hpp"
#include "support/test_support.hpp"

using namespace hamlet;

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

using Method = test::RunMethod;

// A run file of `methods` on `problems` problems of a 10-D quadratic; a method without first losses starts every
// problem at 2.
void write_run(const std::string& path, std::vector<Method> methods, int64_t problems = 4) {
  for (auto& m : methods) {
    if (m.first_loss.empty()) m.first_loss.assign(static_cast<std::size_t>(problems), 2.0);
  }
  test::write_run(path, methods, problems);
}

const eval::SuiteTaskRow& row(const eval::SuiteTaskResult& t, const std::string& name) {
  return test::named(t.rows, name);
}
const eval::SuiteAggregateRow& aggregate(const eval::Suite& s, const std::string& name) {
  return test::named(s.aggregate, name);
}

}  // namespace

TEST_CASE("interquartile mean: the middle half, with fractional weights at the quartiles") {
  // 8 values: the middle half of 1..8 is 3, 4, 5, 6.
  CHECK(eval::interquartile_mean({7, 1, 8, 3, 5, 2, 6, 4}) == Approx(4.5));
  // 5 values, sorted 1, 2, 4, 8, 100: the quartiles fall inside the 2nd and 4th, which enter with 3/4 each:
  // (0.75·2 + 4 + 0.75·8) / 2.5 = 4.6.
  CHECK(eval::interquartile_mean({100, 8, 1, 4, 2}) == Approx(4.6));
  // 6 values, sorted 1, 2, 3, 4, 9, 60: (0.5·2 + 3 + 4 + 0.5·9) / 3 = 12.5 / 3, where dropping ⌊6/4⌋ = 1 value at each
  // end (scipy's trim_mean) would give (2 + 3 + 4 + 9) / 4 = 4.5.
  CHECK(eval::interquartile_mean({9, 1, 60, 3, 2, 4}) == Approx(12.5 / 3));
  // 3 values: x/6 + 2y/3 + z/6; 2 values: their mean; 1 value: itself.
  CHECK(eval::interquartile_mean({12, 0, 3}) == Approx(0 / 6.0 + 2 * 3 / 3.0 + 12 / 6.0));
  CHECK(eval::interquartile_mean({1, 3}) == Approx(2));
  CHECK(eval::interquartile_mean({0.7}) == Approx(0.7));
  // When 4 divides n it is the plain mean of the middle n/2 sorted values.
  const std::vector<double> twelve = {0.3, 5, -2, 8, 1.5, 7, 2.25, 11, -4, 6, 0, 3};
  std::vector<double> sorted = twelve;
  std::sort(sorted.begin(), sorted.end());
  CHECK(eval::interquartile_mean(twelve) == Approx(std::accumulate(sorted.begin() + 3, sorted.begin() + 9, 0.0) / 6));
  // Non-finite values count as +∞: in the top quarter they carry no weight, in the middle half they make it +∞.
  CHECK(eval::interquartile_mean({1, 2, 3, kInf}) == Approx(2.5));
  CHECK(eval::interquartile_mean({1, 2, 3, kNaN}) == Approx(2.5));
  CHECK(eval::interquartile_mean({1, kNaN, kInf, 4}) == kInf);
  CHECK_THROWS_WITH(eval::interquartile_mean({}), Catch::Contains("no values"));
}

TEST_CASE("quantile: linear interpolation between order statistics, +∞ where it interpolates towards one") {
  CHECK(eval::quantile({5, 1, 4, 2, 3}, 0.25) == Approx(2));   // h = 1
  CHECK(eval::quantile({5, 1, 4, 2, 3}, 0.1) == Approx(1.4));  // h = 0.4
  CHECK(eval::quantile({5, 1, 4, 2, 3}, 0.975) == Approx(4.9));  // h = 3.9
  CHECK(eval::quantile({5, 1, 4, 2, 3}, 1) == Approx(5));
  CHECK(eval::quantile({1, 2, kInf}, 0.5) == Approx(2));
  CHECK(eval::quantile({1, 2, kInf}, 0.75) == kInf);
  CHECK_THROWS_WITH(eval::quantile({1, 2}, 1.5), Catch::Contains("[0, 1]"));
}

TEST_CASE("bootstrap interval of the IQM: contains it, is the same for the same seed, shrinks with more seeds") {
  // Every score equal: every resample has the same IQM.
  const auto flat = eval::bootstrap_iqm({{0.8, 0.8}, {0.8}, {0.8, 0.8, 0.8}}, 500, 1);
  CHECK(flat.iqm == Approx(0.8));
  CHECK(flat.low == Approx(0.8));
  CHECK(flat.high == Approx(0.8));
  CHECK(flat.tasks == 3);
  CHECK(flat.scores == 6);

  // Two tasks of one score each, 1 and 3: a resample is (1, 1), (3, 3) or a mixed pair with probabilities 1/4, 1/4,
  // 1/2, so its IQM (the mean of two values) is 1, 3 or 2; the 2.5 % and 97.5 % quantiles of 2000 such draws are 1
  // and 3 (each extreme has ~500 draws, far more than the 50 at each end).
  const auto pair = eval::bootstrap_iqm({{1}, {3}}, 2000, 0);
  CHECK(pair.iqm == Approx(2));
  CHECK(pair.low == Approx(1));
  CHECK(pair.high == Approx(3));

  // Six tasks whose seeds spread the same way around a task level; with four times the seeds per task the seed
  // part of the resampling noise halves, so the interval narrows.
  const std::vector<double> spread = {0.6, 0.8, 1.0, 1.2, 1.5};
  const std::vector<double> level = {1.0, 1.02, 0.98, 1.01, 0.99, 1.0};
  std::vector<std::vector<double>> five, twenty;
  for (double l : level) {
    five.emplace_back();
    twenty.emplace_back();
    for (double s : spread) five.back().push_back(l * s);
    for (int k = 0; k < 4; ++k) {
      for (double s : spread) twenty.back().push_back(l * s);
    }
  }
  const auto a = eval::bootstrap_iqm(five, 2000, 7), b = eval::bootstrap_iqm(twenty, 2000, 7);
  CHECK(a.low <= a.iqm);
  CHECK(a.iqm <= a.high);
  CHECK(a.low < a.high);
  CHECK(b.low <= b.iqm);
  CHECK(b.iqm <= b.high);
  CHECK((b.high - b.low) < 0.75 * (a.high - a.low));
  // A fixed seed gives the same interval.
  const auto again = eval::bootstrap_iqm(five, 2000, 7);
  CHECK(again.low == a.low);
  CHECK(again.high == a.high);

  CHECK_THROWS_WITH(eval::bootstrap_iqm({}, 10, 0), Catch::Contains("no tasks"));
  CHECK_THROWS_WITH(eval::bootstrap_iqm({{1.0}, {}}, 10, 0), Catch::Contains("without scores"));
  CHECK_THROWS_WITH(eval::bootstrap_iqm({{1.0}}, 10, 0, 1.0), Catch::Contains("confidence"));
}

TEST_CASE("suite: scores normalised by tuned Adam per task, divergence counted per seed, IQM over tasks and seeds") {
  test::TempDir dir;
  // Task A: adam's mean final loss 0.2, nag (the better validation score) 0.1. The learned optimizer's three seeds
  // end at mean 0.1 (score 0.5), 0.3 (1.5) and NaN on one problem (+∞, diverged).
  write_run((dir / "a_base.h5").string(), {{"adam", {0.2, 0.1, 0.3, 0.2}, "lr=0.01", 0.6},
                                           {"nag", {0.1, 0.1, 0.1, 0.1}, "lr=0.1", 0.5},
                                           {"rmsprop", {0.4, 0.4, 0.4, 0.4}, "lr=0.001", 0.7}});
  write_run((dir / "a_s0.h5").string(), {{"lopt", {0.1, 0.1, 0.1, 0.1}, "out_mul=1"}});
  write_run((dir / "a_s1.h5").string(), {{"lopt", {0.3, 0.2, 0.4, 0.3}, "out_mul=1"}});
  write_run((dir / "a_s2.h5").string(), {{"lopt", {kNaN, 0.2, 0.2, 0.2}, "out_mul=1"}});
  // Task B: adam's mean 0.4, adam also the validation choice; nag mean 0.3. Seeds at mean 0.2 (0.5), 0.4 (1.0) and
  // 1.0 on problems that started at 1.0 (2.5; not below its start: diverged).
  write_run((dir / "b_base.h5").string(), {{"adam", {0.4, 0.4, 0.4, 0.4}, "lr=0.01", 0.3},
                                           {"nag", {0.3, 0.3, 0.3, 0.3}, "lr=0.1", 0.5},
                                           {"rmsprop", {0.8, 0.8, 0.8, 0.8}, "lr=0.001", 0.7}});
  write_run((dir / "b_s0.h5").string(), {{"lopt", {0.2, 0.2, 0.2, 0.2}, "out_mul=1"}});
  write_run((dir / "b_s1.h5").string(), {{"lopt", {0.4, 0.4, 0.4, 0.4}, "out_mul=1"}});
  write_run((dir / "b_s2.h5").string(), {{"lopt", {1.0, 1.0, 1.0, 1.0}, "out_mul=1", -1, {1.0, 1.0, 1.0, 1.0}}});
  // A learned optimizer found on task A only is listed, not aggregated.
  write_run((dir / "a_only.h5").string(), {{"other", {0.2, 0.2, 0.2, 0.2}, "out_mul=1"}});

  {
    std::ofstream f(dir / "suite.txt");
    f << "# two tasks\n\n"
         "a | Task A | a_base.h5 a_s0.h5:learned a_s1.h5:learned a_s2.h5:learned a_only.h5\n"
         "b|Task B|b_base.h5   b_s0.h5:learned b_s1.h5:learned b_s2.h5:learned  # comment\n";
  }
  const auto tasks = eval::read_suite_file((dir / "suite.txt").string());
  REQUIRE(tasks.size() == 2);
  CHECK(tasks[1].label == "b");
  CHECK(tasks[1].title == "Task B");
  REQUIRE(tasks[1].inputs.size() == 4);
  CHECK(tasks[1].inputs[1].path == (dir / "b_s0.h5").string());  // relative to the suite file
  CHECK(tasks[1].inputs[1].label == "learned");

  eval::SuiteOptions o;
  o.resamples = 300;
  const eval::Suite s = eval::evaluate_suite(tasks, o);
  REQUIRE(s.tasks.size() == 2);
  const auto& a = s.tasks[0];
  const auto& b = s.tasks[1];
  CHECK(a.validation_choice == "nag");
  CHECK(b.validation_choice == "adam");
  CHECK(a.normalizer_mean == Approx(0.2));
  CHECK(b.normalizer_mean == Approx(0.4));

  const auto& la = row(a, "learned");
  CHECK(la.learned);
  REQUIRE(la.scores.size() == 3);
  CHECK(la.scores[0] == Approx(0.5));
  CHECK(la.scores[1] == Approx(1.5));
  CHECK(la.scores[2] == kInf);
  CHECK(la.diverged_seeds == 1);
  const auto& lb = row(b, "learned");
  CHECK(lb.scores[0] == Approx(0.5));
  CHECK(lb.scores[1] == Approx(1.0));
  CHECK(lb.scores[2] == Approx(2.5));
  CHECK(lb.diverged_seeds == 1);
  CHECK(lb.score == Approx((0.2 + 0.4 + 1.0) / 3 / 0.4));

  // Hand-designed rows: one score each; Δ against the validation choice and against adam, paired over problems.
  const auto& ra = row(a, "rmsprop");
  CHECK(ra.scores == std::vector<double>{2.0});
  REQUIRE(ra.delta_validation);
  CHECK(ra.delta_validation->mean == Approx(0.3));  // rmsprop − nag
  CHECK(ra.verdict_validation == eval::Verdict::kBBetter);
  REQUIRE(ra.delta_normalizer);
  CHECK(ra.delta_normalizer->mean == Approx(0.2));  // rmsprop − adam: d = 0.4 − adam, SE = sd(adam)/2
  CHECK(ra.delta_normalizer->se == Approx(std::sqrt(0.02 / 3 / 4)));
  // adam − nag on A: d = (0.1, 0, 0.2, 0.1), mean 0.1, SE = sd(d)/2.
  const auto& aa = row(a, "adam");
  CHECK(aa.delta_validation->mean == Approx(0.1));
  CHECK(aa.delta_validation->se == Approx(std::sqrt(0.02 / 3 / 4)));
  CHECK_FALSE(aa.delta_normalizer);
  CHECK_FALSE(row(a, "nag").delta_validation);
  CHECK_FALSE(row(b, "adam").delta_validation);

  // Aggregate: the learned row pools 0.5, 1.5, +∞, 0.5, 1.0, 2.5; sorted 0.5, 0.5, 1.0, 1.5, 2.5, +∞ with weights
  // 0, 1/2, 1, 1, 1/2, 0 over 3: (0.25 + 1 + 1.5 + 1.25) / 3 = 4/3.
  const auto& al = aggregate(s, "learned");
  CHECK(al.learned);
  CHECK(al.iqm.iqm == Approx(4.0 / 3));
  CHECK(al.iqm.tasks == 2);
  CHECK(al.iqm.scores == 6);
  CHECK(al.iqm.low <= al.iqm.iqm);
  CHECK(al.iqm.iqm <= al.iqm.high);
  CHECK(al.median == Approx(1.25));
  CHECK(al.diverged_tasks == 2);
  CHECK(al.diverged_seeds == 2);
  CHECK(al.seeds == 6);
  CHECK(al.diverged_on == std::vector<std::string>{"a", "b"});
  CHECK(al.beats + al.ties + al.loses == 2);
  // adam scores 1 everywhere; the validation choice is nag on A (0.5) and adam on B (1): the IQM of two is their mean.
  const auto& adam = aggregate(s, "adam");
  CHECK(adam.iqm.iqm == Approx(1.0));
  CHECK(adam.iqm.low == Approx(1.0));
  CHECK(adam.iqm.high == Approx(1.0));
  CHECK(adam.loses == 1);  // on A, against nag; on B it is the reference
  const auto& choice = aggregate(s, eval::kValidationChoiceRow);
  CHECK(choice.iqm.iqm == Approx(0.75));
  CHECK(choice.beats + choice.ties + choice.loses == 0);
  CHECK(aggregate(s, "rmsprop").iqm.iqm == Approx(2.0));
  CHECK(s.not_aggregated == std::vector<std::string>{"other (1 of 2 tasks)"});
  // Order: hand-designed, the validation choice, learned.
  REQUIRE(s.aggregate.size() == 5);
  CHECK(s.aggregate[3].name == eval::kValidationChoiceRow);
  CHECK(s.aggregate[4].name == "learned");

  const std::string md = eval::to_markdown(s);
  CHECK_THAT(md, Catch::Contains("### Aggregate over 2 tasks"));
  CHECK_THAT(md, Catch::Contains("| learned | 2 | 6 | 1.333 | ["));
  CHECK_THAT(md, Catch::Contains("| 2 (2/6): a, b |"));
  CHECK_THAT(md, Catch::Contains("#### a: Task A"));
  CHECK_THAT(md, Catch::Contains("validation choice **nag** (validation score 0.500); adam's mean final loss 0.200."));
  CHECK_THAT(md, Catch::Contains("| score | Δ vs validation choice (± SE) | verdict | Δ vs adam (± SE) | verdict |"));
  CHECK_THAT(md, Catch::Contains("| rmsprop | — | 0.400 ± 0.000 | 2.000 | **0.300 ± 0.000** | loses | **0.200 ± 0.041** | loses | 0/1 |"));
  CHECK_THAT(md, Catch::Contains("Not aggregated (not on every task): other (1 of 2 tasks)"));
  CHECK_THAT(md, Catch::Contains("| learned | 3: 0.100 / 0.300 / nan |"));
  const std::string json = eval::to_json(s);
  CHECK_THAT(json, Catch::Contains("\"validation_choice\": \"nag\""));
  CHECK_THAT(json, Catch::Contains("null"));  // the +∞ score
}

TEST_CASE("suite: a task without the normaliser or with a non-positive one, and malformed suite files, are refused") {
  test::TempDir dir;
  write_run((dir / "no_adam.h5").string(), {{"nag", {0.1, 0.1, 0.1, 0.1}, "lr=0.1", 0.5}});
  write_run((dir / "zero_adam.h5").string(), {{"adam", {0, 0, 0, 0}, "lr=0.1", 0.5}});
  const auto task = [&](const std::string& file) {
    return eval::SuiteTask{"t1", "", {{(dir / file).string(), ""}}};
  };
  CHECK_THROWS_WITH(eval::evaluate_suite({task("no_adam.h5")}, eval::SuiteOptions()),
                    Catch::Contains("suite task 't1': no method 'adam' (the normaliser)"));
  CHECK_THROWS_WITH(eval::evaluate_suite({task("zero_adam.h5")}, eval::SuiteOptions()),
                    Catch::Contains("finite, positive"));
  eval::SuiteOptions nag;
  nag.normalizer = "nag";
  CHECK(eval::evaluate_suite({task("no_adam.h5")}, nag).tasks[0].normalizer_mean == Approx(0.1));

  const auto refused = [&](const std::string& text, const std::string& expect) {
    std::ofstream((dir / "bad.txt").string()) << text;
    CHECK_THROWS_WITH(eval::read_suite_file((dir / "bad.txt").string()), Catch::Contains(expect));
  };
  refused("a | title\n", "line 1: expected 'label | title | run files', got 2 field(s)");
  refused("# only a comment\n", "no tasks");
  refused("a | A | x.h5\na | again | y.h5\n", "line 2: the label 'a' is given twice");
  refused("\n | A | x.h5\n", "line 2: the label is empty");
  refused("a | A |   \n", "names no run files");
  CHECK_THROWS_WITH(eval::read_suite_file((dir / "missing.txt").string()), Catch::Contains("cannot be read"));
}
