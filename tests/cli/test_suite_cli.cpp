// `hamlet compare --mode=suite` end to end: run files written by `hamlet evaluate`, a suite file naming them, the
// aggregate and per-task tables in Markdown and JSON, and the refusals of bad input (one message, exit code 2).
#include "support/catch.hpp"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "support/test_support.hpp"

using namespace hamlet;

namespace {

int hamlet_cli(const std::string& args, std::string* out = nullptr) {
  return test::run_command(test::hamlet_binary() + " " + args + " 2>&1", out);
}

std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

TEST_CASE("compare --mode=suite: per-task tables and the aggregate from a suite file of evaluate run files") {
  test::TempDir dir;
  const std::string small = " --problems=3 --steps=3 --seed=0 --log-level=warn";
  for (const std::string dim : {"10", "5"}) {
    const std::string task = " --task=quadratic --task.dim=" + dim + small;
    REQUIRE(hamlet_cli("evaluate --optimizers=adam,nag --tune --tune-problems=2" + task + " --out=" +
                       (dir / ("base" + dim + ".h5")).string()) == 0);
    for (const std::string seed : {"0", "1"}) {
      // A learned optimizer's random initialisation, once per "seed" file: enough for the table's mechanics.
      REQUIRE(hamlet_cli("evaluate --optimizers=phnn-paper" + task + " --out=" +
                         (dir / ("phnn" + dim + "_" + seed + ".h5")).string()) == 0);
    }
  }
  {
    std::ofstream f(dir / "suite.txt");
    f << "q10 | quadratic, n = 10 | base10.h5 phnn10_0.h5:init phnn10_1.h5:init\n"
         "q5 | quadratic, n = 5 | base5.h5 phnn5_0.h5:init phnn5_1.h5:init\n";
  }
  const std::string suite = " --mode=suite --suite=" + (dir / "suite.txt").string();
  std::string out;
  REQUIRE(hamlet_cli("compare" + suite + " --resamples=200 --title=Tiny", &out) == 0);
  CHECK_THAT(out, Catch::Contains("## Tiny"));
  CHECK_THAT(out, Catch::Contains("### Aggregate over 2 tasks"));
  CHECK_THAT(out, Catch::Contains("over 200 stratified bootstrap resamples"));
  CHECK_THAT(out, Catch::Contains("| *adam* | 2 | 2 | 1.000 | [1.000, 1.000] |"));
  CHECK_THAT(out, Catch::Contains("| init | 2 | 4 |"));
  CHECK_THAT(out, Catch::Contains("#### q5: quadratic, n = 5"));
  CHECK_THAT(out, Catch::Contains("3 paired problems, 3 steps (task quadratic)"));

  const auto json_path = dir / "suite.json";
  REQUIRE(hamlet_cli("compare" + suite + " --format=json --out=" + json_path.string()) == 0);
  const auto doc = nlohmann::json::parse(read_text(json_path));
  CHECK(doc["normalizer"] == "adam");
  CHECK(doc["resamples"] == 2000);
  REQUIRE(doc["tasks"].size() == 2);
  CHECK(doc["tasks"][1]["label"] == "q5");
  bool found = false;
  for (const auto& a : doc["aggregate"]) {
    if (a["method"] != "init") continue;
    found = true;
    CHECK(a["scores"] == 4);
    CHECK(a["tasks"] == 2);
  }
  CHECK(found);

  // Another normaliser: nag scores 1 on every task.
  REQUIRE(hamlet_cli("compare" + suite + " --normalizer=nag --resamples=50", &out) == 0);
  CHECK_THAT(out, Catch::Contains("| *nag* | 2 | 2 | 1.000 | [1.000, 1.000] |"));

  // Bad input: one message, exit 2, nothing written.
  struct Case {
    std::string args, expect;
  };
  const std::string base10 = (dir / "base10.h5").string();
  {
    std::ofstream f(dir / "unpaired.txt");
    f << "a | A | base10.h5 base5.h5\n";
  }
  const std::vector<Case> cases = {
      {"compare --mode=suite", "needs --suite=FILE"},
      {"compare" + suite + " --in=" + base10, "reads its run files from --suite=FILE, not from --in"},
      {"compare --in=" + base10 + " --suite=" + (dir / "suite.txt").string(), "--suite is read in --mode=suite only"},
      {"compare" + suite + " --format=csv", "writes md or json"},
      {"compare" + suite + " --reference=nag", "--reference cannot be set"},
      {"compare" + suite + " --normalizer=rmsprop", "suite task 'q10': no method 'rmsprop' (the normaliser)"},
      {"compare" + suite + " --resamples=0", "resamples"},
      {"compare" + suite + " --confidence=1", "confidence must be in (0, 1)"},
      {"compare --mode=suite --suite=" + (dir / "nothing.txt").string(), "cannot be read"},
      {"compare --mode=suite --suite=" + (dir / "unpaired.txt").string(), "task option dim is '5'"},
      {"compare --mode=sweet --in=" + base10, "--mode must be table, drift or suite"},
  };
  for (const auto& c : cases) {
    INFO(c.args);
    CHECK(hamlet_cli(c.args + " --out=" + (dir / "never.md").string(), &out) == 2);
    CHECK_THAT(out, Catch::Contains(c.expect));
    CHECK_FALSE(std::filesystem::exists(dir / "never.md"));
  }
}
