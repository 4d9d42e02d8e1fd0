// End-to-end tests of the hamlet executable: exit codes, error messages, INI/flag equivalence, output files.
#include "support/catch.hpp"

#include <cmath>
#include <filesystem>
#include <fstream>

#include "hamlet/core/options.hpp"
#include "hamlet/io/h5.hpp"
#include "hamlet/tasks/registry.hpp"
#include "support/data_files.hpp"
#include "support/test_support.hpp"

using namespace hamlet;

namespace {

int hamlet_cli(const std::string& args, std::string* out = nullptr) {
  return test::run_command(test::hamlet_binary() + " " + args, out);
}

// The registry's names as the CLI's messages and help list them.
std::string join_names(const std::vector<std::string>& names, const std::string& separator) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : separator) + n;
  return out;
}

}  // namespace

TEST_CASE("bad input: one clear message, exit code 2, no output file") {
  test::TempDir dir;
  const std::string out = (dir / "run.h5").string();
  const std::string small = " --problems=2 --steps=2 --tune-problems=2 --out=" + out;
  std::string msg;
  struct Case {
    std::string args, expect;
  };
  // Evaluate runs, each given `small` after its flags: tiny sizes and the output path that must not appear.
  const std::vector<Case> evaluate_cases = {
      {"--task=cubic", "unknown task 'cubic'; valid tasks: " + join_names(tasks::task_names(), ", ")},
      {"--optimizers=adam,adamw", "adamw"},
      {"--optimizers=adam --optimizer.adam.lr=-1", "lr"},
      {"--optimizers=adam --optimizer.adam.lr=fast", "fast"},
      {"--optimizers=adam --optimizer.sgd.lr=0.1", "not in --optimizers"},
      {"--problems=many", "problems"},
      {"--task.dim=0", "quadratic.dim"},
      {"--task.dimension=3", "dimension"},
      {"--split=dev", "split must be train, validation or test"},
      {"--bogus=1", "unknown option 'bogus'"},
      {"--task.dim=3 --task.dim=4", "option 'task.dim' given twice ('3' and '4')"},
      {"--device=gpu7", "evaluate.device"},
      {"--config=" + (dir / "missing.ini").string(),
       "config file '" + (dir / "missing.ini").string() + "' does not exist"},
      {"--task=mlp --task.dataset=idx --task.data_dir=" + (dir / "nodata").string(), "train-images-idx3-ubyte"},
  };
  std::vector<Case> cases = {
      {"frobnicate", "unknown command 'frobnicate'"},
      {"evaluate --problems=0 --optimizers=sgd --out=" + out, "evaluate.problems"},
      {"evaluate --optimizers=sgd --problems=2 --steps=2 --out=" + (dir / "no/such/dir/run.h5").string(),
       "does not exist"},
  };
  for (const auto& c : evaluate_cases) cases.push_back({"evaluate " + c.args + small, c.expect});
  for (const auto& c : cases) {
    INFO(c.args);
    CHECK(hamlet_cli(c.args, &msg) == 2);
    CHECK_THAT(msg, Catch::Contains(c.expect));
    CHECK_THAT(msg, Catch::Contains("error"));
    CHECK(std::filesystem::is_empty(dir.path()));
  }
}

TEST_CASE("evaluate writes an HDF5 run file and an INI config equals the same flags") {
  test::TempDir dir;
  const std::string flags_out = (dir / "flags.h5").string();
  const std::string ini_out = (dir / "ini.h5").string();
  std::string msg;
  const std::string flags =
      "evaluate --task=quadratic --task.dim=5 --optimizers=momentum,adam,ecdsep --optimizer.adam.lr=0.05 "
      "--problems=7 --steps=9 --seed=3 --tune --tune-problems=3 --tune-grid=0.1,0.01";
  REQUIRE(hamlet_cli(flags + " --out=" + flags_out, &msg) == 0);
  CHECK_THAT(msg, Catch::Contains("| momentum |") && Catch::Contains("| adam |") && Catch::Contains("wrote"));

  const auto ini = dir / "run.ini";
  std::ofstream(ini) << "task = quadratic\noptimizers = momentum,adam,ecdsep\nproblems = 7\nsteps = 9\nseed = 3\n"
                        "tune = true\ntune-problems = 3\ntune-grid = 0.1,0.01\n[task]\ndim = 5\n"
                        "[optimizer.adam]\nlr = 0.05\n";
  REQUIRE(hamlet_cli("evaluate --config=" + ini.string() + " --out=" + ini_out, &msg) == 0);

  io::H5Reader a(flags_out), b(ini_out);
  CHECK((a.read_strings("/method_names") == std::vector<std::string>{"momentum", "adam", "ecdsep"}));
  for (const std::string m : {"momentum", "adam", "ecdsep"}) {
    const std::string g = "/methods/" + m;
    CHECK(a.read(g + "/loss").sizes().vec() == std::vector<int64_t>({7, 9}));
    CHECK(at::equal(a.read(g + "/loss"), b.read(g + "/loss")));
    CHECK(at::equal(a.read(g + "/tune/score"), b.read(g + "/tune/score")));
    CHECK(a.attribute_string(g, "options") == b.attribute_string(g, "options"));
  }
  CHECK(a.attribute_string("/", "config") == b.attribute_string("/", "config"));
  CHECK_THAT(a.attribute_string("/", "config"), Catch::Contains("[optimizer.adam]\nlr = 0.05"));
  CHECK(a.attribute_string("/", "task") == "quadratic");
  CHECK(a.attribute_int("/", "problems") == 7);
  CHECK_THAT(a.attribute_string("/", "task_options"), Catch::Contains("\"dim\":\"5\""));
  // Tuning overrides the given lr with the validation choice, recorded in the method's options.
  CHECK_THAT(a.attribute_string("/methods/adam", "options"),
             Catch::Contains("\"lr\":\"" + std::string(a.attribute_double("/methods/adam/tune", "best_lr") == 0.1 ? "0.1" : "0.01") + "\""));
  // A flag overrides the same key in the config file.
  const std::string over_out = (dir / "over.h5").string();
  REQUIRE(hamlet_cli("evaluate --config=" + ini.string() + " --steps=4 --tune=false --out=" + over_out, &msg) == 0);
  CHECK(io::H5Reader(over_out).read("/methods/adam/loss").size(1) == 4);
}

TEST_CASE("evaluate --tune chooses a learned optimizer's out_mul on validation problems") {
  test::TempDir dir;
  const std::string out = (dir / "tuned.h5").string();
  std::string msg;
  REQUIRE(hamlet_cli("evaluate --optimizers=lstm --optimizer.lstm.out_mul=0.1 --tune --tune-problems=3 --problems=4 "
                     "--steps=10 --log-level=warn --out=" + out, &msg) == 0);
  INFO(msg);
  io::H5Reader r(out);
  // The default grid for a learned optimizer: its own out_mul times 10, 3, 1, 0.3, 0.1.
  const at::Tensor grid = r.read("/methods/lstm/tune/grid");
  REQUIRE(grid.numel() == 5);
  CHECK(grid[0].item<double>() == Approx(1.0));
  CHECK(grid[4].item<double>() == Approx(0.01));
  const at::Tensor scores = r.read("/methods/lstm/tune/score");
  const double best = r.attribute_double("/methods/lstm/tune", "best_lr");
  // The choice is the grid value with the lowest finite validation score, and it is what the test run used.
  int64_t arg = -1;
  for (int64_t i = 0; i < 5; ++i) {
    const double s = scores[i].item<double>();
    if (std::isfinite(s) && (arg < 0 || s < scores[arg].item<double>())) arg = i;
  }
  REQUIRE(arg >= 0);
  CHECK(best == grid[arg].item<double>());
  CHECK_THAT(r.attribute_string("/methods/lstm", "options"), Catch::Contains("\"out_mul\":\"" + format_number(best) + "\""));
}

TEST_CASE("tune, list, version and benchmark run") {
  test::TempDir dir;
  std::string msg;
  const std::string out = (dir / "tune.h5").string();
  REQUIRE(hamlet_cli("tune --optimizers=sgd --tune-problems=4 --steps=10 --tune-grid=1,0.01,0.0001 --out=" + out, &msg) == 0);
  io::H5Reader r(out);
  CHECK(r.read("/methods/sgd/tune/grid").numel() == 3);
  CHECK(r.attribute_double("/methods/sgd/tune", "best_lr") == 0.01);
  CHECK(r.attribute_string("/", "split") == "validation");
  REQUIRE(hamlet_cli("list", &msg) == 0);
  CHECK_THAT(msg, Catch::Contains("ecdsep") && Catch::Contains("quadratic") && Catch::Contains("phnn-paper (19 / 55)") &&
                      Catch::Contains("lstm (5221 / 5301)") && Catch::Contains("phnn (232 / 468)") &&
                      Catch::Contains("mlp-lopt (197)") && Catch::Contains("phnn-features (1434)"));
  REQUIRE(hamlet_cli("version", &msg) == 0);
  CHECK_THAT(msg, Catch::Contains("libtorch 1.13"));
  REQUIRE(hamlet_cli("benchmark --optimizers=adam --problems=4 --steps=3", &msg) == 0);
  CHECK_THAT(msg, Catch::Contains("| adam | 4 |"));
  // --mode=step over a sweep of a task option: a table per value, then ns per coordinate side by side.
  REQUIRE(hamlet_cli("benchmark --mode=step --task=quadratic --task.dim=8,16 --optimizers=sgd,adam,phnn "
                     "--optimizer.phnn.mass=constant --steps=3", &msg) == 0);
  CHECK_THAT(msg, Catch::Contains("GB/s") && Catch::Contains("one tanh of the fused kernels") &&
                      Catch::Contains("| adam |") && Catch::Contains("| 8 coordinates | 16 coordinates |"));
  CHECK_THAT(msg, Catch::Contains("| 523 | 64 |"));  // phnn's flops and, of them, activations per coordinate
  // A bad value anywhere in the sweep stops the command before anything runs.
  CHECK(hamlet_cli("benchmark --mode=step --task=quadratic --task.dim=8,0 --optimizers=sgd --steps=3", &msg) == 2);
  CHECK_THAT(msg, Catch::Contains("dim") && !Catch::Contains("| sgd |"));
}

TEST_CASE("evaluate runs the cnn task on the 8x8 digits and Adam lowers its loss") {
  if (!test::have_data(test::data_dir() / "digits" / "digits.csv.gz")) return;
  test::TempDir dir;
  const std::string out = (dir / "cnn.h5").string();
  std::string msg;
  REQUIRE(hamlet_cli("evaluate --task=cnn --task.dataset=digits --task.batch_size=64 --optimizers=adam "
                     "--optimizer.adam.lr=0.01 --problems=3 --steps=40 --data-dir=" + test::data_dir().string() +
                     " --out=" + out, &msg) == 0);
  INFO(msg);
  io::H5Reader r(out);
  const at::Tensor loss = r.read("/methods/adam/loss");
  REQUIRE(loss.sizes().vec() == std::vector<int64_t>({3, 40}));
  CHECK(loss.select(1, 39).mean().item<double>() < 0.6 * loss.select(1, 0).mean().item<double>());
}

TEST_CASE("an MNIST evaluation runs from a directory outside the repository, and --data-dir and HAMLET_DATA_DIR choose the data") {
  const auto data = test::data_dir();
  if (!test::have_data(data / "mnist" / "train-images-idx3-ubyte")) return;
  test::TempDir dir;
  const std::string run = "cd " + dir.path().string() + " && ";
  const std::string eval = test::hamlet_binary() + " evaluate --task=mlp --optimizers=sgd --problems=2 --steps=2 ";
  std::string msg;
  // Neither flag nor variable: the data root configured at build time, whatever the working directory.
  CHECK(test::run_command(run + "env -u HAMLET_DATA_DIR " + eval + "--out=a.h5", &msg) == 0);
  INFO(msg);
  CHECK(std::filesystem::exists(dir / "a.h5"));
  // The variable wins over the configured root, and the error says where it looked and why.
  const std::string bogus = (dir / "nowhere").string();
  CHECK(test::run_command(run + "HAMLET_DATA_DIR=" + bogus + " " + eval + "--out=b.h5", &msg) == 2);
  CHECK_THAT(msg, Catch::Contains(bogus + "/mnist/train-images-idx3-ubyte"));
  CHECK_THAT(msg, Catch::Contains("from HAMLET_DATA_DIR"));
  CHECK_FALSE(std::filesystem::exists(dir / "b.h5"));
  // The flag wins over the variable.
  CHECK(test::run_command(run + "HAMLET_DATA_DIR=" + bogus + " " + eval + "--data-dir=" + data.string() + " --out=c.h5",
                          &msg) == 0);
  CHECK(std::filesystem::exists(dir / "c.h5"));
  CHECK(test::run_command(run + eval + "--data-dir=" + bogus + " --out=d.h5", &msg) == 2);
  CHECK_THAT(msg, Catch::Contains("from --data-dir"));
}
