#pragma once
// Construction of tasks by name: "quadratic" (QuadraticOptions keys), "mlp" (MlpOptions keys) or "hnn" (HnnOptions
// keys).
#include <string>
#include <vector>

#include "hamlet/core/options.hpp"
#include "hamlet/tasks/task.hpp"

namespace hamlet::tasks {

std::vector<std::string> task_names();
// Throws hamlet::Error for an unknown name (listing the valid ones) or invalid options.
TaskPtr make_task(const std::string& name, OptionMap options);

}  // namespace hamlet::tasks
