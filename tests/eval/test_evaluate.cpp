#include "support/catch.hpp"

#include <cmath>
#include <limits>

#include "hamlet/core/error.hpp"
#include "hamlet/eval/evaluate.hpp"
#include "hamlet/eval/report.hpp"
#include "hamlet/eval/statistics.hpp"
#include "hamlet/eval/tune.hpp"
#include "hamlet/io/h5.hpp"
#include "hamlet/io/run_file.hpp"
#include "hamlet/tasks/quadratic.hpp"
#include "support/test_support.hpp"

using namespace hamlet;

namespace {

// Plain gradient descent written here so the evaluation loop is tested independently of the optim module.
class TestGd final : public optim::Optimizer {
 public:
  explicit TestGd(double lr) : lr_(lr) {}
  std::string name() const override { return "test-gd"; }
  OptionMap options() const override { return {{"lr", format_number(lr_)}}; }
  double learning_rate() const override { return lr_; }
  optim::OptimizerState init(const TensorList&) const override { return {}; }
  optim::StepResult update(const TensorList& params, const TensorList& grads, const at::Tensor& loss,
                           const optim::OptimizerState& state) const override {
    optim::StepResult r;
    for (std::size_t i = 0; i < params.size(); ++i) r.params.push_back(params[i] - lr_ * grads[i]);
    r.state = state;
    r.state.step += 1;
    r.diagnostics["loss_seen"] = loss;
    return r;
  }

 private:
  double lr_;
};

// Gradient descent that asks for at most `cap` coordinates per tensor program and counts its runs (one per chunk).
class CappedGd final : public optim::Optimizer {
 public:
  CappedGd(double lr, int64_t cap) : gd_(lr), cap_(cap) {}
  std::string name() const override { return "capped-gd"; }
  OptionMap options() const override { return gd_.options(); }
  double learning_rate() const override { return gd_.learning_rate(); }
  optim::OptimizerState init(const TensorList& params) const override {
    ++inits;
    return gd_.init(params);
  }
  optim::StepResult update(const TensorList& params, const TensorList& grads, const at::Tensor& loss,
                           const optim::OptimizerState& state) const override {
    return gd_.update(params, grads, loss, state);
  }
  int64_t max_batch_coordinates() const override { return cap_; }
  mutable int inits = 0;

 private:
  TestGd gd_;
  int64_t cap_;
};

tasks::QuadraticTask quadratic64() { return tasks::QuadraticTask(tasks::QuadraticOptions::from_map({{"dtype", "float64"}})); }

// `problems` problems of `steps` steps, without the progress bar in the test output.
eval::EvaluateOptions quiet_options(int64_t problems, int64_t steps) {
  eval::EvaluateOptions o;
  o.problems = problems;
  o.steps = steps;
  o.progress = false;
  return o;
}

}  // namespace

TEST_CASE("evaluate logs loss, gradient norm and update norm per problem and step") {
  const auto task = quadratic64();
  eval::EvaluateOptions o = quiet_options(6, 5);
  TestGd gd(0.01);
  const auto tr = eval::evaluate(task, gd, o);
  CHECK(tr.loss.sizes().vec() == std::vector<int64_t>({6, 5}));
  CHECK(tr.final_loss.sizes().vec() == std::vector<int64_t>({6}));
  // Step 0 starts at θ0 = 0: F = ‖y‖², ‖∇F‖ = ‖2Wᵀy‖, and GD moves by lr·‖∇F‖.
  const auto batch = task.sample(tasks::Split::kTest, 0, 0, 6, at::kCPU);
  const auto& q = dynamic_cast<tasks::QuadraticBatch&>(*batch);
  CHECK(test::max_abs_diff(tr.loss.select(1, 0), q.y().pow(2).sum(1)) < 1e-12);
  const at::Tensor g0 = 2 * at::bmm(q.w().transpose(1, 2), -q.y().unsqueeze(2)).squeeze(2);
  CHECK(test::max_abs_diff(tr.grad_norm.select(1, 0), g0.norm(2, {1})) < 1e-12);
  CHECK(test::max_abs_diff(tr.update_norm, 0.01 * tr.grad_norm) < 1e-12);
  CHECK(test::max_abs_diff(tr.diagnostics.at("loss_seen"), tr.loss) < 1e-15);
  // Final loss is F(θ_K) after the last update; for a small step GD decreases the loss.
  CHECK((tr.final_loss < tr.loss.select(1, 4)).all().item<bool>());

  SECTION("chunked and one-by-one evaluation give the same numbers as one batch") {
    for (int64_t chunk : {int64_t{1}, int64_t{4}}) {
      eval::EvaluateOptions c = o;
      c.batch = chunk;
      const auto tc = eval::evaluate(task, gd, c);
      CHECK(test::max_abs_diff(tc.loss, tr.loss) < 1e-12);
      CHECK(test::max_abs_diff(tc.final_loss, tr.final_loss) < 1e-12);
      CHECK(test::max_abs_diff(tc.update_norm, tr.update_norm) < 1e-12);
    }
  }
  SECTION("an optimizer's coordinate cap splits problems into chunks without changing the numbers") {
    CappedGd capped(0.01, 25);  // n = 10 coordinates per problem: chunks of 2 -> 3 chunks for 6 problems
    const auto tc = eval::evaluate(task, capped, o);
    CHECK(capped.inits == 3);
    CHECK(test::max_abs_diff(tc.loss, tr.loss) < 1e-12);
    CHECK(test::max_abs_diff(tc.final_loss, tr.final_loss) < 1e-12);
    eval::EvaluateOptions explicit_batch = o;
    explicit_batch.batch = 6;  // an explicit --batch wins over the cap
    CappedGd one_chunk(0.01, 25);
    eval::evaluate(task, one_chunk, explicit_batch);
    CHECK(one_chunk.inits == 1);
  }
  SECTION("bad options name the field") {
    eval::EvaluateOptions bad = o;
    bad.steps = 0;
    CHECK_THROWS_WITH(eval::evaluate(task, gd, bad), Catch::Contains("evaluate.steps"));
    bad = o;
    bad.device = "gpu7";
    CHECK_THROWS_WITH(eval::evaluate(task, gd, bad), Catch::Contains("evaluate.device"));
  }
}

TEST_CASE("statistics: mean ± SE, median, paired difference, summary") {
  const at::Tensor v = at::tensor({1.0, 2.0, 3.0, 10.0}, at::kDouble);
  const auto m = eval::mean_se(v);
  CHECK(m.mean == Approx(4.0));
  // sample std of (1,2,3,10) = sqrt(((−3)²+(−2)²+(−1)²+6²)/3) = sqrt(50/3); SE = that / 2.
  CHECK(m.se == Approx(std::sqrt(50.0 / 3.0) / 2.0));
  CHECK(eval::median(v) == Approx(2.5));
  CHECK(eval::median(at::tensor({3.0, 1.0, 2.0}, at::kDouble)) == Approx(2.0));
  const auto d = eval::paired_difference(v, v - 1.0);
  CHECK(d.mean == Approx(1.0));
  CHECK(d.se == Approx(0.0).margin(1e-15));

  eval::Trajectory tr;
  tr.loss = at::tensor({4.0, 2.0, 6.0, 4.0, 1.0, std::numeric_limits<double>::quiet_NaN()}, at::kDouble).reshape({3, 2});
  const auto s = eval::summarize(tr);
  CHECK(s.problems == 3);
  CHECK(s.steps == 2);
  CHECK(std::isnan(s.final_mean));
  CHECK(s.non_finite == 1);
  tr.loss = at::tensor({4.0, 2.0, 6.0, 4.0, 1.0, 0.0}, at::kDouble).reshape({3, 2});
  const auto s2 = eval::summarize(tr);
  CHECK(s2.final_mean == Approx(2.0));
  CHECK(s2.final_median == Approx(2.0));
  CHECK(s2.mean_over_steps == Approx((3.0 + 5.0 + 0.5) / 3.0));
  CHECK(s2.non_finite == 0);
}

TEST_CASE("tuning picks the best finite learning rate on validation problems") {
  const auto task = quadratic64();
  eval::EvaluateOptions o = quiet_options(5, 50);
  o.split = tasks::Split::kValidation;
  const auto make = [](double lr) { return std::make_shared<TestGd>(lr); };
  const auto r = eval::tune_learning_rate(task, make, {1e6, 0.01, 1e-5}, o);
  REQUIRE(r.scores.size() == 3);
  CHECK(std::isinf(r.scores[0]));  // lr 1e6 overflows to inf on these quadratics
  CHECK(r.scores[1] < r.scores[2]);
  CHECK(r.best_lr == 0.01);
  CHECK(r.best_score == r.scores[1]);

  eval::EvaluateOptions test_split = o;
  test_split.split = tasks::Split::kTest;
  CHECK_THROWS_WITH(eval::tune_learning_rate(task, make, {0.1}, test_split), Catch::Contains("validation split"));
  CHECK_THROWS_WITH(eval::tune_learning_rate(task, make, {1e6}, o), Catch::Contains("diverged"));
}

TEST_CASE("method results are written to HDF5 and tabulated") {
  const auto task = quadratic64();
  eval::EvaluateOptions o = quiet_options(4, 3);
  std::vector<eval::MethodResult> rs;
  for (double lr : {0.01, 0.001}) {
    TestGd gd(lr);
    eval::MethodResult r;
    r.name = "gd" + format_number(lr);
    r.options = gd.options();
    r.trajectory = eval::evaluate(task, gd, o);
    r.summary = eval::summarize(r.trajectory);
    rs.push_back(r);
  }
  const std::string table = eval::summary_table(rs);
  CHECK_THAT(table, Catch::Contains("| gd0.01 | 0.01 |") && Catch::Contains("| gd0.001 | 0.001 |"));
  test::TempDir dir;
  const std::string path = (dir / "m.h5").string();
  {
    io::RunRecord run;
    run.header.task = "quadratic";
    run.methods.push_back(eval::to_record(rs[0]));
    run.methods.back().name = "gd";
    io::RunFileWriter(path).write(run);
  }
  io::H5Reader r(path);
  CHECK(at::equal(r.read("/methods/gd/loss"), rs[0].trajectory.loss));
  CHECK(at::equal(r.read("/methods/gd/diagnostics/loss_seen"), rs[0].trajectory.diagnostics.at("loss_seen")));
  CHECK(r.attribute_double("/methods/gd", "final_mean") == rs[0].summary.final_mean);
  CHECK(r.attribute_string("/methods/gd", "options") == R"({"lr":"0.01"})");  // JSON, for json.loads
}
