#include "hamlet/tasks/registry.hpp"

#include "hamlet/core/error.hpp"
#include "hamlet/tasks/hnn.hpp"
#include "hamlet/tasks/mlp.hpp"
#include "hamlet/tasks/quadratic.hpp"

namespace hamlet::tasks {

std::vector<std::string> task_names() { return {"quadratic", "mlp", "hnn"}; }

TaskPtr make_task(const std::string& name, OptionMap options) {
  if (name == "quadratic") return std::make_shared<QuadraticTask>(QuadraticOptions::from_map(std::move(options)));
  if (name == "mlp") return std::make_shared<MlpTask>(MlpOptions::from_map(std::move(options)));
  if (name == "hnn") return std::make_shared<HnnTask>(HnnOptions::from_map(std::move(options)));
  throw Error("unknown task '" + name + "'; valid tasks: quadratic, mlp, hnn");
}

}  // namespace hamlet::tasks
