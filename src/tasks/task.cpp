#include "hamlet/tasks/task.hpp"

#include "hamlet/core/error.hpp"
#include "hamlet/core/seed.hpp"

namespace hamlet::tasks {

std::string split_name(Split split) {
  switch (split) {
    case Split::kTrain: return "train";
    case Split::kValidation: return "validation";
    case Split::kTest: return "test";
  }
  return "unknown";
}

Split parse_split(const std::string& name) {
  if (name == "train") return Split::kTrain;
  if (name == "validation") return Split::kValidation;
  if (name == "test") return Split::kTest;
  throw Error("unknown split '" + name + "'; valid splits: train, validation, test");
}

bool is_data_location_option(const std::string& key) { return key == "data_source" || key == "data_dir"; }

uint64_t problem_seed(Split split, uint64_t seed, int64_t index) {
  return mix_seeds({seed, static_cast<uint64_t>(split), static_cast<uint64_t>(index)});
}

}  // namespace hamlet::tasks
