#include "hamlet/tasks/registry.hpp"

#include <utility>

#include "hamlet/core/registry.hpp"
#include "hamlet/tasks/hnn.hpp"
#include "hamlet/tasks/mlp.hpp"
#include "hamlet/tasks/quadratic.hpp"

namespace hamlet::tasks {
namespace {

template <typename T, typename Options>
TaskPtr make(OptionMap options) {
  return std::make_shared<T>(Options::from_map(std::move(options)));
}

// Table order is the order of task_names().
const Registry<Factory<TaskPtr>>& registry() {
  static const Registry<Factory<TaskPtr>> r("task", {
                                               {"quadratic", make<QuadraticTask, QuadraticOptions>},
                                               {"mlp", make<MlpTask, MlpOptions>},
                                               {"hnn", make<HnnTask, HnnOptions>},
                                           });
  return r;
}

}  // namespace

std::vector<std::string> task_names() { return registry().names(); }

TaskPtr make_task(const std::string& name, OptionMap options) { return registry().at(name)(std::move(options)); }

}  // namespace hamlet::tasks
