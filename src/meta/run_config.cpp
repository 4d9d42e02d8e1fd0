#include "hamlet/meta/run_config.hpp"

#include <map>
#include <sstream>

#include "hamlet/core/error.hpp"

namespace hamlet::meta {

RunConfig resolved_config(const tasks::Task& task, const learned::LearnedOptimizer& optimizer,
                          const MetaTrainOptions& options) {
  RunConfig c;
  c.emplace_back("task", task.name());
  for (const auto& [k, v] : task.options()) c.emplace_back("task." + k, v);
  c.emplace_back("optimizer", optimizer.name());
  for (const auto& [k, v] : optimizer.options()) c.emplace_back("optimizer." + k, v);
  for (const auto& [k, v] : options.to_map()) c.emplace_back(k, v);
  return c;
}

std::string format_run_config(const RunConfig& config) {
  std::string out;
  for (const auto& [k, v] : config) out += k + "=" + v + "\n";
  return out;
}

RunConfig parse_run_config(const std::string& text) {
  RunConfig c;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    const auto eq = line.find('=');
    if (eq == std::string::npos) {
      c.emplace_back(line, "");
    } else {
      c.emplace_back(line.substr(0, eq), line.substr(eq + 1));
    }
  }
  return c;
}

void check_resume_config(const RunConfig& stored, const RunConfig& current, const std::string& checkpoint) {
  const std::map<std::string, std::string> old_values(stored.begin(), stored.end());
  HAMLET_CHECK(old_values.count("task") > 0, checkpoint,
               ": the checkpoint holds no resolved configuration (written by an older hamlet), so --resume cannot "
               "check that it continues the same run; start a new run");
  const std::map<std::string, std::string> new_values(current.begin(), current.end());
  // Walk the union of keys in the current order, then keys only the checkpoint has.
  RunConfig order = current;
  for (const auto& kv : stored) {
    if (!new_values.count(kv.first)) order.push_back(kv);
  }
  for (const auto& [key, unused] : order) {
    // The initialisation seed (the weights come from the checkpoint) and where the data were read from (a clone in
    // another directory reads the same files; what they hold is compared through the dataset's other keys) are not
    // compared.
    if (key == "optimizer.seed" || (key.rfind("task.", 0) == 0 && tasks::is_data_location_option(key.substr(5)))) continue;
    const auto o = old_values.find(key);
    const auto n = new_values.find(key);
    const std::string was = o == old_values.end() ? "(absent)" : o->second;
    const std::string now = n == new_values.end() ? "(absent)" : n->second;
    if (was == now) continue;
    if (key == "epochs" && o != old_values.end() && n != new_values.end()) {
      try {
        if (std::stoll(now) >= std::stoll(was)) continue;
      } catch (const std::exception&) {
      }
      throw Error(checkpoint + ": --resume cannot lower epochs (" + was + " in the checkpoint, " + now +
                  " now); only the number of epochs may grow");
    }
    throw Error(checkpoint + ": --resume with a different configuration: " + key + " is '" + was +
                "' in the checkpoint, '" + now + "' now (only epochs may change on resume)");
  }
}

}  // namespace hamlet::meta
