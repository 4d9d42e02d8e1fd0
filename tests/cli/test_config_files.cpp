// Config files shared by several commands: [meta-train] / [evaluate] sections, several --config files, flags over
// files, and the resolved configuration a run file records (cli/args.hpp).
#include "support/catch.hpp"

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "hamlet/cli/args.hpp"
#include "hamlet/core/error.hpp"
#include "hamlet/io/h5.hpp"
#include "support/checks.hpp"
#include "support/test_support.hpp"

using namespace hamlet;
namespace po = boost::program_options;

namespace {

int hamlet_cli(const std::string& args, std::string* out = nullptr) {
  return test::run_command(test::hamlet_binary() + " " + args, out);
}

std::string write_file(const test::TempDir& dir, const std::string& name, const std::string& text) {
  const auto path = dir / name;
  std::ofstream(path) << text;
  return path.string();
}

// "key = value" lines of an INI text as a map, keys of a [section] written "section.key".
std::map<std::string, std::string> ini_map(const std::string& text) {
  std::map<std::string, std::string> out;
  std::istringstream in(text);
  std::string line, section;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    if (line.front() == '[') {
      section = line.substr(1, line.find(']') - 1);
      continue;
    }
    const auto eq = line.find(" = ");
    if (eq == std::string::npos) continue;
    out[(section.empty() ? "" : section + ".") + line.substr(0, eq)] = line.substr(eq + 3);
  }
  return out;
}

// A protocol in two files the way experiments/protocols/ writes them: a task file and an optimizer file.
struct Protocol {
  std::string task, optimizer;
};
Protocol write_protocol(const test::TempDir& dir) {
  return {write_file(dir, "task.ini",
                     "task = quadratic\n[task]\ndim = 3\n[meta-train]\nhorizon = 6\n"
                     "[evaluate]\nproblems = 3\nsteps = 6\nseed = 4\n[benchmark]\nbogus = 1\n"),
          write_file(dir, "phnn.ini",
                     "[optimizer.phnn]\nmass = constant\n[meta-train]\noptimizer = phnn\nunroll = 3\n"
                     "meta-lr = 0.02\nepochs = 2\ntrajectories = 1\nvalidation-problems = 2\n")};
}

}  // namespace

TEST_CASE("parse_args: a command section is read by that command only, other command sections are skipped") {
  test::TempDir dir;
  const std::string file = write_file(dir, "both.ini",
                                      "task = quadratic\n[task]\ndim = 7\n[optimizer.adam]\nlr = 0.5\n"
                                      "[meta-train]\nepochs = 9\nunroll = 4\n[evaluate]\nproblems = 11\n"
                                      "[tune]\nnot-an-option = 1\n");
  po::options_description meta("meta-train");
  meta.add_options()("task", po::value<std::string>()->default_value("x"), "")(
      "epochs", po::value<int64_t>()->default_value(1), "")("unroll", po::value<int64_t>()->default_value(20), "");
  po::options_description eval("evaluate");
  eval.add_options()("task", po::value<std::string>()->default_value("x"), "")(
      "problems", po::value<int64_t>()->default_value(100), "")("epochs", po::value<int64_t>()->default_value(5), "");

  const auto m = cli::parse_args({"--config=" + file}, meta, {"task", "optimizer"}, "meta-train");
  CHECK(m.values["epochs"].as<int64_t>() == 9);
  CHECK(m.values["unroll"].as<int64_t>() == 4);
  CHECK(m.values["task"].as<std::string>() == "quadratic");
  CHECK(m.dynamic == OptionMap{{"task.dim", "7"}, {"optimizer.adam.lr", "0.5"}});

  const auto e = cli::parse_args({"--config=" + file}, eval, {"task", "optimizer"}, "evaluate");
  CHECK(e.values["problems"].as<int64_t>() == 11);
  // evaluate has an "epochs" option too, but [meta-train] epochs is not its: it keeps its default.
  CHECK(e.values["epochs"].as<int64_t>() == 5);
  CHECK(e.values["epochs"].defaulted());
  CHECK(e.dynamic == OptionMap{{"task.dim", "7"}, {"optimizer.adam.lr", "0.5"}});
  CHECK(e.config_files == std::vector<std::string>{file});

  // The key after the section name is read as if it stood at the top, so an unknown one is an error naming it.
  const std::string typo = write_file(dir, "typo.ini", "[meta-train]\nepocs = 3\n");
  CHECK_THROWS_WITH(cli::parse_args({"--config=" + typo}, meta, {"task"}, "meta-train"),
                    Catch::Contains("unknown option 'epocs' in [meta-train] of config file '" + typo + "'"));
  // evaluate skips the [meta-train] section with the typo.
  CHECK(cli::parse_args({"--config=" + typo}, eval, {"task"}, "evaluate").values["epochs"].defaulted());
  // A shared (top-level) key must be valid for every command that reads the file.
  const std::string shared = write_file(dir, "shared.ini", "problems = 3\n");
  CHECK_THROWS_WITH(cli::parse_args({"--config=" + shared}, meta, {"task"}, "meta-train"),
                    Catch::Contains("unknown option 'problems' in config file '" + shared + "' for hamlet meta-train") &&
                        Catch::Contains("under [meta-train]"));
  const std::string twice = write_file(dir, "twice.ini", "[meta-train]\nepochs = 3\n[meta-train]\nepochs = 3\n");
  CHECK_THROWS_WITH(cli::parse_args({"--config=" + twice}, meta, {"task"}, "meta-train"),
                    Catch::Contains("option 'epochs' given twice in [meta-train] of config file"));
  const std::string bad = write_file(dir, "bad.ini", "[meta-train]\nepochs = many\n");
  CHECK_THROWS_WITH(cli::parse_args({"--config=" + bad}, meta, {"task"}, "meta-train"),
                    Catch::Contains("many") && Catch::Contains("in [meta-train] of config file '" + bad + "'"));
}

TEST_CASE("parse_args: several config files compose, conflicting values name both files, a flag overrides all") {
  test::TempDir dir;
  po::options_description desc("evaluate");
  desc.add_options()("task", po::value<std::string>()->default_value("quadratic"), "")(
      "problems", po::value<int64_t>()->default_value(100), "")("steps", po::value<int64_t>()->default_value(100), "");
  const std::string a = write_file(dir, "a.ini", "problems = 8\n[task]\ndim = 4\n[optimizer.phnn]\nmass = constant\n");
  const std::string b = write_file(dir, "b.ini", "[evaluate]\nproblems = 8\nsteps = 6\n[optimizer.lstm]\nout_mul = 1\n");
  const auto both = cli::parse_args({"--config=" + a, "--config=" + b}, desc, {"task", "optimizer"}, "evaluate");
  CHECK(both.values["problems"].as<int64_t>() == 8);  // the same value in both files is fine
  CHECK(both.values["steps"].as<int64_t>() == 6);
  CHECK(both.dynamic ==
        OptionMap{{"task.dim", "4"}, {"optimizer.phnn.mass", "constant"}, {"optimizer.lstm.out_mul", "1"}});
  CHECK(both.config_files == std::vector<std::string>{a, b});

  const std::string c = write_file(dir, "c.ini", "[evaluate]\nproblems = 9\n[task]\ndim = 5\n");
  CHECK_THROWS_WITH(cli::parse_args({"--config=" + a, "--config=" + c}, desc, {"task", "optimizer"}, "evaluate"),
                    Catch::Contains("option 'problems' is '8' in config file '" + a + "' but '9' in [evaluate] of config file '" + c + "'"));
  const std::string d = write_file(dir, "d.ini", "[task]\ndim = 5\n");
  CHECK_THROWS_WITH(cli::parse_args({"--config=" + a, "--config=" + d}, desc, {"task", "optimizer"}, "evaluate"),
                    Catch::Contains("option 'task.dim' is '4' in config file '" + a + "' but '5' in config file '" + d + "'"));

  // Flags win over every file, registered and dynamic options alike.
  const auto flagged = cli::parse_args({"--config=" + a, "--problems=2", "--config=" + b, "--task.dim=9"}, desc,
                                       {"task", "optimizer"}, "evaluate");
  CHECK(flagged.values["problems"].as<int64_t>() == 2);
  CHECK(flagged.values["steps"].as<int64_t>() == 6);
  CHECK(flagged.dynamic.at("task.dim") == "9");
  // The resolved configuration holds the final values and no config-file names; read back it resolves the same.
  const auto ini = ini_map(flagged.resolved_ini);
  test::check_entries(ini, {{"problems", "2"}, {"steps", "6"}, {"task.dim", "9"}, {"optimizer.lstm.out_mul", "1"}});
  test::check_no_keys(ini, {"config"});
  const std::string resolved = write_file(dir, "resolved.ini", flagged.resolved_ini);
  CHECK(cli::parse_args({"--config=" + resolved}, desc, {"task", "optimizer"}, "evaluate").resolved_ini ==
        flagged.resolved_ini);

  const std::string nested = write_file(dir, "nested.ini", "config = a.ini\n");
  CHECK_THROWS_WITH(cli::parse_args({"--config=" + nested}, desc, {"task"}, "evaluate"),
                    Catch::Contains("a config file cannot name another"));
}

TEST_CASE("one protocol file pair serves meta-train and evaluate, and the run files record what was used") {
  test::TempDir dir;
  const Protocol p = write_protocol(dir);
  const std::string config = " --config=" + p.task + " --config=" + p.optimizer;
  std::string out;

  // Each command resolves its own section and the shared keys (the [benchmark] typo is neither's business).
  REQUIRE(hamlet_cli("meta-train" + config + " --print-config", &out) == 0);
  const auto m = ini_map(out);
  test::check_entries(m, {{"optimizer", "phnn"}, {"horizon", "6"}, {"unroll", "3"}, {"meta-lr", "0.02"},
                          {"epochs", "2"}, {"task", "quadratic"}, {"task.dim", "3"},
                          {"optimizer.phnn.mass", "constant"}});
  test::check_no_keys(m, {"problems"});
  REQUIRE(hamlet_cli("evaluate" + config + " --optimizers=phnn --print-config", &out) == 0);
  const auto e = ini_map(out);
  test::check_entries(e, {{"problems", "3"}, {"steps", "6"}, {"seed", "4"}, {"task.dim", "3"},
                          {"optimizer.phnn.mass", "constant"}});
  test::check_no_keys(e, {"unroll", "horizon"});

  // Real runs: meta-train with a flag over the file, then evaluate the weights with the same protocol.
  const std::string w = (dir / "w.h5").string(), meta_run = (dir / "meta.h5").string(),
                    eval_run = (dir / "eval.h5").string();
  REQUIRE(hamlet_cli("meta-train" + config + " --epochs=1 --seed=5 --log-level=warn --weights-out=" + w +
                         " --out=" + meta_run, &out) == 0);
  std::string printed;
  REQUIRE(hamlet_cli("meta-train" + config + " --epochs=1 --seed=5 --log-level=warn --print-config", &printed) == 0);
  const std::string meta_config = io::H5Reader(meta_run).attribute_string("/", "config");
  CHECK(meta_config == printed);
  CHECK(ini_map(meta_config).at("epochs") == "1");
  CHECK(ini_map(meta_config).at("seed") == "5");
  // The run used what the configuration says: 1 epoch of 1 trajectory of 6 steps on 3-D problems.
  const io::H5Reader mr(meta_run);
  CHECK(mr.read("/meta_train/curve").size(0) == 1);
  CHECK(mr.attribute_int("/meta_train", "optimizee_steps") == 6);
  CHECK_THAT(mr.attribute_string("/", "task_options"), Catch::Contains("\"dim\":\"3\""));
  CHECK_THAT(mr.attribute_string("/", "optimizer_options"), Catch::Contains("\"mass\":\"constant\""));

  const std::string eval_args = "evaluate" + config + " --optimizers=phnn --optimizer.phnn.weights=" + w +
                                " --steps=5 --log-level=warn";
  REQUIRE(hamlet_cli(eval_args + " --out=" + eval_run, &out) == 0);
  REQUIRE(hamlet_cli(eval_args + " --print-config", &printed) == 0);
  const io::H5Reader er(eval_run);
  CHECK(er.attribute_string("/", "config") == printed);
  CHECK(er.attribute_int("/", "problems") == 3);
  CHECK(er.attribute_int("/", "steps") == 5);
  CHECK(er.attribute_int("/", "seed") == 4);
  CHECK(er.read("/methods/phnn/loss").sizes().vec() == std::vector<int64_t>({3, 5}));

  // The recorded configuration, given back with --config, reruns the same evaluation bitwise.
  const std::string again = (dir / "again.h5").string();
  const std::string recorded = write_file(dir, "recorded.ini", er.attribute_string("/", "config"));
  REQUIRE(hamlet_cli("evaluate --config=" + recorded + " --out=" + again, &out) == 0);
  const io::H5Reader ar(again);
  CHECK(ar.attribute_string("/", "config") == er.attribute_string("/", "config"));
  CHECK(at::equal(ar.read("/methods/phnn/loss"), er.read("/methods/phnn/loss")));

  // Errors through the CLI: one line naming the key and the files.
  const std::string typo = write_file(dir, "typo.ini", "[evaluate]\nproblem = 3\n");
  CHECK(hamlet_cli("evaluate --config=" + typo + " --optimizers=sgd", &out) == 2);
  CHECK_THAT(out, Catch::Contains("unknown option 'problem' in [evaluate] of config file '" + typo + "'"));
  const std::string other = write_file(dir, "other.ini", "[task]\ndim = 4\n");
  CHECK(hamlet_cli("meta-train" + config + " --config=" + other + " --weights-out=" + w, &out) == 2);
  CHECK_THAT(out, Catch::Contains("option 'task.dim' is '3' in config file '" + p.task + "' but '4' in config file '" +
                                  other + "'"));
}
