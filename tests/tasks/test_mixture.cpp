// The mixture task: components read from an INI file, weights normalised, episode draws reproducible and in
// proportion to the weights, problems refused, every declaration error naming the file and section.
#include "support/catch.hpp"

#include <fstream>

#include "hamlet/core/error.hpp"
#include "hamlet/tasks/mixture.hpp"
#include "hamlet/tasks/registry.hpp"
#include "support/test_support.hpp"

using namespace hamlet;

namespace {

std::string write_ini(const test::TempDir& dir, const std::string& text, const std::string& name = "mix.ini") {
  const std::string path = (dir / name).string();
  std::ofstream(path) << text;
  return path;
}

const char* kTwoQuadratics =
    "[small]\ntask = quadratic\nweight = 1\ndim = 3\n"
    "[large]\ntask = quadratic\nweight = 3\ndim = 7\n";

}  // namespace

TEST_CASE("mixture: components from the file, weights normalised, resolved options recorded") {
  test::TempDir dir;
  const tasks::TaskPtr mix = tasks::make_task("mixture", {{"file", write_ini(dir, kTwoQuadratics)}});
  const auto components = mix->components();
  REQUIRE(components.size() == 2);
  CHECK(components[0].name == "small");
  CHECK(components[0].weight == 0.25);
  CHECK(components[1].weight == 0.75);
  CHECK(components[1].task->options().at("dim") == "7");
  CHECK(mix->options().at("components") ==
        "small: quadratic weight=0.25 (dim=3, dtype=float32); large: quadratic weight=0.75 (dim=7, dtype=float32)");
  // A plain task is its own only component.
  const tasks::TaskPtr plain = tasks::make_task("quadratic", {});
  REQUIRE(plain->components().size() == 1);
  CHECK(plain->components()[0].task == plain.get());
  CHECK(&plain->episode_task(3, 17) == plain.get());
}

TEST_CASE("mixture: each episode's component is a pure function of (seed, episode), drawn in proportion") {
  test::TempDir dir;
  const tasks::TaskPtr mix = tasks::make_task("mixture", {{"file", write_ini(dir, kTwoQuadratics)}});
  const tasks::TaskPtr again = tasks::make_task("mixture", {{"file", write_ini(dir, kTwoQuadratics, "b.ini")}});
  const auto large = mix->components()[1].task;
  int64_t large_count = 0, same = 0, differs_by_seed = 0;
  const int64_t n = 4000;
  for (int64_t k = 0; k < n; ++k) {
    const tasks::Task& t = mix->episode_task(5, k);
    large_count += &t == large ? 1 : 0;
    // The same draw from another instance (same file content): compare by component dimension.
    same += again->episode_task(5, k).options().at("dim") == t.options().at("dim") ? 1 : 0;
    differs_by_seed += mix->episode_task(6, k).options().at("dim") != t.options().at("dim") ? 1 : 0;
  }
  CHECK(same == n);
  CHECK(differs_by_seed > 0);
  // Binomial(4000, 0.75): sd ≈ 27.4; 4 sd either side.
  CHECK(large_count > 3000 - 110);
  CHECK(large_count < 3000 + 110);
}

TEST_CASE("mixture: no problems of its own, and declaration errors name the file and the section") {
  test::TempDir dir;
  const tasks::TaskPtr mix = tasks::make_task("mixture", {{"file", write_ini(dir, kTwoQuadratics)}});
  CHECK_THROWS_WITH(mix->sample(tasks::Split::kTest, 0, 0, 1, c10::Device("cpu")),
                    Catch::Contains("evaluate a component with its own --task"));
  CHECK_THROWS_WITH(tasks::make_task("mixture", {}), Catch::Contains("mixture.file is required"));
  CHECK_THROWS_WITH(tasks::make_task("mixture", {{"file", (dir / "missing.ini").string()}}),
                    Catch::Contains("missing.ini"));
  const auto refused = [&](const std::string& text, const std::string& expect) {
    const std::string path = write_ini(dir, text, "bad.ini");
    CHECK_THROWS_WITH(tasks::make_task("mixture", {{"file", path}}), Catch::Contains(expect));
  };
  refused("task = quadratic\n", "outside a [component] section");
  refused("[a]\nweight = 1\n", "[a] names no task");
  refused("[a]\ntask = mixture\nfile = x.ini\n", "cannot contain a mixture");
  refused("[a]\ntask = quadratic\nweight = 0\n", "weight must be a positive number");
  refused("[a]\ntask = quadratic\nwidth = 3\n", "bad.ini' [a]: quadratic: unknown option(s) width");
  refused("[a]\ntask = nosuch\n", "unknown task 'nosuch'");
  refused("", "declares no component");
}
