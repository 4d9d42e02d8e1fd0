// Run files (io/run_file.hpp): every field round-trips, committed files of schema version 0 still read, a newer
// version is refused, numeric datasets are stored chunked and compressed.
#include <H5Cpp.h>

#include <algorithm>
#include <limits>

#include "hamlet/core/error.hpp"
#include "hamlet/io/h5.hpp"
#include "hamlet/io/run_file.hpp"
#include "hamlet/io/schema.hpp"
#include "support/catch.hpp"
#include "support/checks.hpp"
#include "support/test_support.hpp"

using namespace hamlet;

namespace {

// A run of `kind` whose header has every field filled in.
io::RunRecord run_of(const std::string& kind) {
  io::RunRecord run;
  run.header = {kind, "0.1.0", "libtorch 1.13.0", "hamlet evaluate --problems=3", "problems = 3\n",
                "2026-12-08T00:00:00Z", "quadratic", {{"dim", "10"}, {"dtype", "float32"}}};
  return run;
}

io::MethodRecord evaluated(const std::string& name, double scale) {
  io::MethodRecord m;
  m.name = name;
  m.options = {{"lr", "0.1"}, {"weights", "/a b/c.h5"}};
  m.loss = at::arange(3 * 40, at::kDouble).reshape({3, 40}) * scale;
  m.final_loss = at::tensor({0.5, 0.25, 0.125}, at::kDouble) * scale;
  m.grad_norm = m.loss + 1;
  m.update_norm = m.loss + 2;
  m.diagnostics["energy"] = m.loss * -1;
  m.seconds = 1.5;
  m.final_mean = 0.3, m.final_se = 0.1, m.final_median = 0.25, m.mean_over_steps = 2, m.mean_over_steps_se = 0.5;
  m.non_finite = 1;
  return m;
}

void check_equal(const io::MethodRecord& a, const io::MethodRecord& b) {
  using M = io::MethodRecord;
  test::check_members_equal(a, b, &M::name, &M::options);
  for (const auto& [x, y] : {std::pair{a.loss, b.loss}, std::pair{a.final_loss, b.final_loss},
                             std::pair{a.grad_norm, b.grad_norm}, std::pair{a.update_norm, b.update_norm}}) {
    REQUIRE(x.defined() == y.defined());
    if (!x.defined()) continue;
    CHECK(x.scalar_type() == y.scalar_type());
    CHECK(at::equal(x, y));
  }
  REQUIRE(a.diagnostics.size() == b.diagnostics.size());
  for (const auto& [name, values] : a.diagnostics) CHECK(at::equal(values, b.diagnostics.at(name)));
  test::check_members_equal(a, b, &M::seconds, &M::final_mean, &M::final_se, &M::final_median, &M::mean_over_steps,
                            &M::mean_over_steps_se, &M::non_finite, &M::random_init);
  REQUIRE(a.tune.has_value() == b.tune.has_value());
  if (a.tune) {
    using T = io::TuneRecord;
    test::check_members_equal(*a.tune, *b.tune, &T::grid, &T::scores, &T::best_lr, &T::best_score, &T::criterion);
  }
}

void check_equal(const io::RunHeader& a, const io::RunHeader& b) {
  using H = io::RunHeader;
  test::check_members_equal(a, b, &H::kind, &H::hamlet_version, &H::dependencies, &H::command, &H::config,
                            &H::created_utc, &H::task, &H::task_options);
}

}  // namespace

TEST_CASE("run file: an evaluate run round-trips every field") {
  test::TempDir dir;
  const std::string path = (dir / "run.h5").string();
  io::RunRecord run = run_of("evaluate");
  run.split = "test", run.seed = 7, run.problems = 3, run.steps = 40, run.device = "cpu";
  run.tuned = true;
  run.summary_table = "| method |\n";
  run.methods = {evaluated("sgd", 1.0), evaluated("phnn", 0.5)};
  run.methods[0].tune = io::TuneRecord{{1, 0.1}, {0.5, std::numeric_limits<double>::infinity()}, 1, 0.5, "c"};
  run.methods[1].random_init = true;
  io::RunFileWriter(path).write(run);

  const io::RunRecord back = io::read_run(path);
  CHECK(back.schema_version == io::kRunFileSchema);
  check_equal(back.header, run.header);
  CHECK(back.split == "test");
  CHECK(back.seed == 7);
  CHECK(back.problems == 3);
  CHECK(back.steps == 40);
  CHECK(back.device == "cpu");
  CHECK(back.tuned == std::optional<bool>(true));
  CHECK(back.summary_table == run.summary_table);
  REQUIRE(back.methods.size() == 2);
  check_equal(back.methods[0], run.methods[0]);  // run order, not HDF5's alphabetical order
  check_equal(back.methods[1], run.methods[1]);

  const io::H5Reader raw(path);
  CHECK(raw.attribute_int("/", "schema_version") == io::kRunFileSchema);
  CHECK(raw.attribute_string("/methods/sgd", "options") == R"({"lr":"0.1","weights":"/a b/c.h5"})");
  CHECK(raw.integrity() == io::H5Reader::Integrity::kValid);
}

TEST_CASE("run file: a tune run holds only the searches") {
  test::TempDir dir;
  const std::string path = (dir / "tune.h5").string();
  io::RunRecord run = run_of("tune");
  run.split = "validation", run.seed = 1, run.problems = 20, run.steps = 40, run.device = "cpu";
  io::MethodRecord m;
  m.name = "adam";
  m.tune = io::TuneRecord{{1, 0.3, 0.1}, {3, 2, 1}, 0.1, 1};
  run.methods = {m};
  io::RunFileWriter(path).write(run);
  const io::RunRecord back = io::read_run(path);
  CHECK_FALSE(back.tuned.has_value());
  CHECK(back.summary_table.empty());
  REQUIRE(back.methods.size() == 1);
  CHECK_FALSE(back.methods[0].evaluated());
  check_equal(back.methods[0], m);
  CHECK_FALSE(io::H5Reader(path).exists("/methods/adam/loss"));
}

TEST_CASE("run file: new numeric datasets are chunked and deflated, small ones and strings contiguous") {
  test::TempDir dir;
  const std::string path = (dir / "run.h5").string();
  io::RunRecord run = run_of("evaluate");
  run.problems = 50, run.steps = 100;
  io::MethodRecord m = evaluated("sgd", 1.0);
  m.loss = at::randn({50, 100}, at::kDouble);  // 5,000 values
  m.final_loss = at::randn({50}, at::kDouble);
  run.methods = {m};
  io::RunFileWriter(path).write(run);
  const io::H5Reader r(path);
  CHECK(at::equal(io::read_run(path).methods[0].loss, m.loss));
  const io::DatasetLayout loss = r.layout("/methods/sgd/loss");
  CHECK(loss.chunked);
  CHECK(loss.shuffle);
  CHECK(loss.deflate);
  CHECK_FALSE(r.layout("/methods/sgd/final_loss").chunked);  // 50 values: below kMinCompressedValues
  CHECK_FALSE(r.layout("/method_names").deflate);
}

TEST_CASE("run file: committed files of schema version 0 read (JSON and k=v options, no checksum)") {
  const auto results = test::source_dir() / "results";
  // Written 2026-11-22: options as "k=v, k=v" text, no checksum, no schema_version.
  const io::RunRecord old = io::read_run((results / "paper/full/quadratic/learned_seed0.h5").string());
  CHECK(old.schema_version == 0);
  CHECK(old.header.kind == "evaluate");
  CHECK(old.header.task_options.at("dim") == "10");
  CHECK(old.problems == 100);
  CHECK(old.steps == 100);
  REQUIRE(old.methods.size() == 3);
  CHECK(old.methods[0].name == "phnn-paper");
  const auto lstm = std::find_if(old.methods.begin(), old.methods.end(), [](const auto& m) { return m.name == "lstm"; });
  REQUIRE(lstm != old.methods.end());
  CHECK(lstm->options.at("out_mul") == "1");
  CHECK(lstm->options.at("weights").find("quadratic_lstm_seed0.h5") != std::string::npos);
  CHECK(old.methods[0].loss.sizes() == at::IntArrayRef({100, 100}));
  CHECK(old.methods[0].final_loss.size(0) == 100);
  // Tuned baselines, written 2026-11-2x (k=v options too).
  const io::RunRecord tuned = io::read_run((results / "transfer/quadratic100/baselines.h5").string());
  CHECK(tuned.header.task_options.at("dim") == "100");
  CHECK(tuned.tuned == std::optional<bool>(true));
  REQUIRE(tuned.methods.size() == 7);
  CHECK(tuned.methods[2].name == "adam");
  REQUIRE(tuned.methods[2].tune.has_value());
  CHECK(tuned.methods[2].tune->grid.size() == 11);
  CHECK(tuned.methods[2].options.at("beta1") == "0.9");
  // JSON options (written after 2026-12-01), still without a checksum.
  const io::RunRecord json = io::read_run((results / "hnn/eval/learned_phnn-features_seed1.h5").string());
  CHECK(json.schema_version == 0);
  CHECK(json.header.task_options.at("system") == "spring");
  REQUIRE(json.methods.size() == 1);
  CHECK(json.methods[0].options.at("inputs") == "lopt-features");
}

TEST_CASE("run file: a newer schema_version is refused naming the file and both versions") {
  test::TempDir dir;
  const std::string path = (dir / "future.h5").string();
  {
    io::H5Writer w(path);
    w.set_attribute("/", io::kSchemaVersionAttribute, io::kRunFileSchema + 1);
    w.write_strings("/method_names", {});
    w.set_attribute("/methods", "note", "from the future");
    w.commit();
  }
  CHECK_THROWS_WITH(io::read_run(path), Catch::Contains(path) && Catch::Contains("schema_version 2") &&
                                            Catch::Contains("version 1 this hamlet reads"));
}

TEST_CASE("run file: version 1 options are JSON only, a lost checksum is refused") {
  test::TempDir dir;
  const std::string path = (dir / "v1.h5").string();
  const auto write = [&](const std::string& options, bool checksum) {
    io::H5Writer w(path);
    w.set_attribute("/", io::kSchemaVersionAttribute, int64_t{1});
    for (const char* name : {"task", "split"}) w.set_attribute("/", name, "x");
    for (const char* name : {"seed", "problems", "steps"}) w.set_attribute("/", name, int64_t{1});
    w.write_strings("/method_names", {"sgd"});
    w.write("/methods/sgd/loss", at::zeros({1, 1}, at::kDouble));
    w.set_attribute("/methods/sgd", "options", options);
    w.commit();
    if (!checksum) H5::H5File(path, H5F_ACC_RDWR).openGroup("/").removeAttr("content_checksum");
  };
  write(R"({"lr":"0.1"})", true);
  CHECK(io::read_run(path).methods[0].options.at("lr") == "0.1");
  write("lr=0.1", true);
  CHECK_THROWS_WITH(io::read_run(path), Catch::Contains("invalid JSON"));
  write(R"({"lr":"0.1"})", false);
  CHECK_THROWS_WITH(io::read_run(path), Catch::Contains("no content checksum"));
}
