#pragma once
// Construction of tasks by name: "quadratic" (QuadraticOptions keys), "mlp" (MlpOptions keys) or "hnn" (HnnOptions
// keys), then any registered at run time.
#include <string>
#include <vector>

#include "hamlet/core/options.hpp"
#include "hamlet/core/registry.hpp"
#include "hamlet/tasks/task.hpp"

namespace hamlet::tasks {

std::vector<std::string> task_names();
// Throws hamlet::Error for an unknown name (listing the valid ones) or invalid options.
TaskPtr make_task(const std::string& name, OptionMap options);
// The options `name` takes, with defaults and help.
const std::vector<OptionInfo>& task_options(const std::string& name);

// Adds a task from outside hamlet (a test, a user's program), after the built-in ones:
//   hamlet::tasks::register_task("logistic", hamlet::buildable<hamlet::tasks::TaskPtr, Logistic, LogisticOptions>());
// docs/extending.md walks through one.
void register_task(const std::string& name, Buildable<TaskPtr> entry);

}  // namespace hamlet::tasks
