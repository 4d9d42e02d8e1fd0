#include "support/catch.hpp"

#include <fstream>
#include <sstream>

#include "hamlet/eval/curves.hpp"
#include "hamlet/io/run_file.hpp"
#include "support/test_support.hpp"

using namespace hamlet;

TEST_CASE("learning curves: per-step mean, SE and median, CSV export") {
  // Three problems, two steps.
  const at::Tensor loss = at::tensor({1.0, 10.0, 2.0, 20.0, 6.0, 30.0}, at::kDouble).reshape({3, 2});
  const auto c = eval::learning_curve(loss);
  CHECK(c.problems == 3);
  CHECK(c.mean[0].item<double>() == Approx(3.0));
  CHECK(c.mean[1].item<double>() == Approx(20.0));
  CHECK(c.median[0].item<double>() == Approx(2.0));
  CHECK(c.median[1].item<double>() == Approx(20.0));
  // sample std of (1, 2, 6) = sqrt(7); SE = sqrt(7/3).
  CHECK(c.se[0].item<double>() == Approx(std::sqrt(7.0 / 3.0)));

  test::TempDir dir;
  const std::string h5 = (dir / "run.h5").string(), csv = (dir / "curves.csv").string();
  {
    io::RunRecord run;
    run.header.task = "quadratic";
    run.problems = loss.size(0);
    run.steps = loss.size(1);
    for (const auto& [name, values] : {std::pair{"sgd", loss * 2}, std::pair{"adam", loss}}) {
      io::MethodRecord m;
      m.name = name;
      m.loss = values;
      run.methods.push_back(m);
    }
    io::RunFileWriter(h5).write(run);
  }
  CHECK(eval::export_curves(h5, csv) == 2);
  std::ifstream in(csv);
  std::string header, first, line;
  std::getline(in, header);
  std::getline(in, first);
  int rows = 1;
  while (std::getline(in, line)) ++rows;
  CHECK(header == "method,step,mean,se,median,problems");
  CHECK(first.rfind("sgd,0,6,", 0) == 0);
  CHECK(rows == 4);
  CHECK_THROWS_WITH(eval::export_curves((dir / "missing.h5").string(), csv), Catch::Contains("no such file"));
}
