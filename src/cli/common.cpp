#include <unistd.h>

#include <ctime>
#include <filesystem>
#include <fstream>

#include "commands.hpp"
#include "hamlet/core/error.hpp"
#include "hamlet/learned/registry.hpp"
#include "hamlet/optim/registry.hpp"
#include "hamlet/tasks/registry.hpp"

namespace po = boost::program_options;

namespace hamlet::cli {

std::vector<std::string> resolve_optimizer_names(const std::string& list) {
  if (list == "all") return optim::hand_designed_names();
  const auto names = split_list(list);
  HAMLET_CHECK(!names.empty(), "--optimizers is empty; give a comma-separated list or 'all'");
  return names;
}

optim::OptimizerPtr build_optimizer(const std::string& name, const OptionMap& options) {
  if (learned::is_learned(name)) return learned::make_learned(name, options);
  return optim::make_optimizer(name, options);
}

tasks::TaskPtr build_task(const ParsedArgs& parsed) {
  return tasks::make_task(parsed.values["task"].as<std::string>(), options_with_prefix(parsed.dynamic, "task"));
}

eval::EvaluateOptions evaluate_options(const ParsedArgs& parsed) {
  eval::EvaluateOptions o;
  const auto& v = parsed.values;
  o.problems = v["problems"].as<int64_t>();
  o.steps = v["steps"].as<int64_t>();
  o.batch = v["batch"].as<int64_t>();
  const int64_t seed = v["seed"].as<int64_t>();
  HAMLET_CHECK(seed >= 0, "--seed must be >= 0, got ", seed);
  o.seed = static_cast<uint64_t>(seed);
  o.split = tasks::parse_split(v["split"].as<std::string>());
  o.device = v["device"].as<std::string>();
  o.validate();
  return o;
}

po::options_description run_options() {
  po::options_description desc("Run options");
  desc.add_options()("task", po::value<std::string>()->default_value("quadratic"),
                     "task: quadratic | mlp (options: --task.KEY=VALUE, e.g. --task.dim=10, --task.activation=relu)")(
      "optimizers", po::value<std::string>()->default_value("all"),
      "comma-separated optimizers or 'all' (options: --optimizer.NAME.KEY=VALUE, e.g. --optimizer.adam.lr=0.1)")(
      "problems", po::value<int64_t>()->default_value(100), "number of paired problems N")(
      "steps", po::value<int64_t>()->default_value(100), "optimizer steps K per problem")(
      "batch", po::value<int64_t>()->default_value(0),
      "problems per tensor program (0 = the task's default: all for quadratics, ~40 for the MLP; "
      "fewer for learned optimizers, which cap the coordinates per program)")(
      "seed", po::value<int64_t>()->default_value(0), "problem seed")(
      "split", po::value<std::string>()->default_value("test"), "problem pool: train | validation | test");
  desc.add(common_options());
  return desc;
}

std::string utc_now() {
  const std::time_t now = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  return buf;
}

void write_atomically(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp-" + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::binary);
    HAMLET_CHECK(out, "cannot write ", path, " (", tmp, " cannot be created; does the directory exist?)");
    out << text;
    out.close();
    HAMLET_CHECK(out, "write error on ", tmp);
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::filesystem::remove(tmp, ec);
    throw Error("cannot rename " + tmp + " to " + path);
  }
}

}  // namespace hamlet::cli
