#include "hamlet/tasks/registry.hpp"

#include <utility>

#include "hamlet/core/registry.hpp"
#include "hamlet/tasks/charlm.hpp"
#include "hamlet/tasks/cnn.hpp"
#include "hamlet/tasks/hnn.hpp"
#include "hamlet/tasks/mixture.hpp"
#include "hamlet/tasks/mlp.hpp"
#include "hamlet/tasks/mlp_family.hpp"
#include "hamlet/tasks/quadratic.hpp"
#include "hamlet/tasks/tabular.hpp"

namespace hamlet::tasks {
namespace {

template <typename T, typename Options>
Buildable<TaskPtr> entry() {
  return buildable<TaskPtr, T, Options>();
}

// Table order is the order of task_names(); register_task() appends.
Registry<Buildable<TaskPtr>>& registry() {
  static Registry<Buildable<TaskPtr>> r("task", {
                                                    {"quadratic", entry<QuadraticTask, QuadraticOptions>()},
                                                    {"mlp", entry<MlpTask, MlpOptions>()},
                                                    {"mlp-family", entry<MlpFamilyTask, MlpFamilyOptions>()},
                                                    {"hnn", entry<HnnTask, HnnOptions>()},
                                                    {"cnn", entry<CnnTask, CnnOptions>()},
                                                    {"tabular", entry<TabularTask, TabularOptions>()},
                                                    {"charlm", entry<CharLmTask, CharLmOptions>()},
                                                    {"mixture", entry<MixtureTask, MixtureOptions>()},
                                                });
  return r;
}

}  // namespace

std::vector<std::string> task_names() { return registry().names(); }

TaskPtr make_task(const std::string& name, OptionMap options) { return registry().at(name).make(std::move(options)); }

const std::vector<OptionInfo>& task_options(const std::string& name) { return registry().at(name).options; }

void register_task(const std::string& name, Buildable<TaskPtr> entry) { registry().add(name, std::move(entry)); }

}  // namespace hamlet::tasks
