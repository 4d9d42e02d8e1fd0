// Run files with wrong content read by eval::read_runs (found by tests/fuzz/fuzz_runs): a hamlet::Error naming the
// file, or the values read as numbers, never a c10::Error from deep inside ATen.
#include "support/catch.hpp"

#include "hamlet/core/error.hpp"
#include "hamlet/eval/compare.hpp"
#include "hamlet/eval/compare_format.hpp"
#include "hamlet/eval/drift.hpp"
#include "hamlet/io/h5.hpp"
#include "support/test_support.hpp"

using namespace hamlet;

namespace {

void write_run(const std::string& path, int64_t problems, int64_t steps, const at::Tensor& loss) {
  io::H5Writer w(path);
  w.set_attribute("/", "task", "quadratic");
  w.set_attribute("/", "task_options", "{\"dim\":\"3\"}");
  w.set_attribute("/", "split", "test");
  w.set_attribute("/", "seed", int64_t{0});
  w.set_attribute("/", "problems", problems);
  w.set_attribute("/", "steps", steps);
  w.write_strings("/method_names", {"adam"});
  w.write("/methods/adam/loss", loss);
  w.set_attribute("/methods/adam", "options", "{\"lr\":\"0.1\"}");
  w.commit();
}

}  // namespace

TEST_CASE("read_runs reads an integer loss dataset as float64") {
  test::TempDir dir;
  const std::string path = (dir / "run.h5").string();
  write_run(path, 2, 3, at::arange(6, at::kLong).reshape({2, 3}));
  const eval::RunSet runs = eval::read_runs(std::vector<std::string>{path});
  REQUIRE(runs.methods.size() == 1);
  CHECK(runs.methods[0].final_loss.scalar_type() == at::kDouble);
  CHECK(runs.methods[0].final_loss[0][1].item<double>() == 5.0);
  CHECK(runs.methods[0].mean_over_steps[0][0].item<double>() == 1.0);
}

TEST_CASE("read_runs refuses a run file of no problems or no steps") {
  test::TempDir dir;
  const std::string path = (dir / "run.h5").string();
  write_run(path, 2, 0, at::zeros({2, 0}, at::kDouble));
  CHECK_THROWS_WITH(eval::read_runs(std::vector<std::string>{path}),
                    Catch::Contains(path) && Catch::Contains("at least one of each"));
  write_run(path, 0, 3, at::zeros({0, 3}, at::kDouble));
  CHECK_THROWS_WITH(eval::read_runs(std::vector<std::string>{path}),
                    Catch::Contains(path) && Catch::Contains("at least one of each"));
}
