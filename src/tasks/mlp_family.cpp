#include "hamlet/tasks/mlp_family.hpp"

#include <algorithm>
#include <sstream>

#include "hamlet/core/error.hpp"
#include "hamlet/core/seed.hpp"

namespace hamlet::tasks {
namespace {

// Streams of a problem or run seed; stream 0 of a problem seed is the problem's initialisation (mlp).
constexpr uint64_t kProblemConfigStream = 1, kEpisodeConfigStream = 2, kValidationConfigStream = 3;
const std::vector<std::string> kActivations{"sigmoid", "relu", "tanh", "elu"};

std::vector<std::string> split_words(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream in(text);
  std::string word;
  while (std::getline(in, word, ':')) {
    if (!word.empty()) out.push_back(word);
  }
  return out;
}

// A non-empty ':'-separated list of distinct words, each one of `valid`.
void check_words(const std::string& field, const std::string& text, const std::vector<std::string>& valid) {
  const auto words = split_words(text);
  HAMLET_CHECK(!words.empty(), field, " must list at least one value, separated by ':'");
  for (std::size_t i = 0; i < words.size(); ++i) {
    if (std::find(valid.begin(), valid.end(), words[i]) == valid.end()) {
      std::string names;
      for (const auto& v : valid) names += (names.empty() ? "" : ", ") + v;
      throw Error(field + ": '" + words[i] + "' is not one of " + names);
    }
    HAMLET_CHECK(std::find(words.begin(), words.begin() + static_cast<std::ptrdiff_t>(i), words[i]) ==
                     words.begin() + static_cast<std::ptrdiff_t>(i),
                 field, " lists '", words[i], "' twice");
  }
}

}  // namespace

const OptionSpec<MlpFamilyOptions>& MlpFamilyOptions::spec() {
  using O = MlpFamilyOptions;
  static const auto s =
      OptionSpec<O>("mlp-family")
          .add("datasets", &O::datasets, "image datasets to draw from, ':'-separated (mnist, fashion-mnist, digits)",
               [](const std::string& field, const std::string& v) {
                 check_words(field, v, {"mnist", "fashion-mnist", "digits"});
               })
          .add("activations", &O::activations, "hidden activations to draw from, ':'-separated",
               [](const std::string& field, const std::string& v) { check_words(field, v, kActivations); })
          .add("widths", &O::widths, "hidden widths to draw from (one per problem, every hidden layer)",
               checks::positive_list)
          .add("depths", &O::depths, "numbers of hidden layers to draw from", checks::positive_list)
          .add("validation_configs", &O::validation_configs,
               "configurations drawn once for validation scoring (meta-training)", checks::positive)
          .include_base<ImageSplitOptions>();
  return s;
}

MlpFamilyTask::MlpFamilyTask(MlpFamilyOptions options) : options_(validated(std::move(options))) {
  datasets_ = split_words(options_.datasets);
  activations_ = split_words(options_.activations);
  for (const auto& dataset : datasets_) {
    MlpOptions base;
    static_cast<ImageSplitOptions&>(base) = options_;  // the family's minibatch size, split and dtype
    base.dataset = dataset;
    const ImageData data(base);  // loaded and split once, shared by the dataset's configurations
    for (const auto& activation : activations_) {
      for (const int64_t width : options_.widths) {
        for (const int64_t depth : options_.depths) {
          MlpOptions o = base;
          o.activation = activation;
          o.hidden.assign(static_cast<std::size_t>(depth), width);
          tasks_.push_back(std::make_shared<MlpTask>(o, data));
          names_.push_back(dataset + "-" + activation + "-" + std::to_string(width) + "x" + std::to_string(depth));
        }
      }
    }
  }
  // Distinct configurations, as many as asked for and the ranges allow.
  const std::size_t wanted = std::min(static_cast<std::size_t>(options_.validation_configs), tasks_.size());
  for (uint64_t k = 0; validation_.size() < wanted; ++k) {
    const std::size_t c = draw(mix_seeds({kValidationConfigStream, k}));
    if (std::find(validation_.begin(), validation_.end(), c) == validation_.end()) validation_.push_back(c);
  }
}

std::size_t MlpFamilyTask::draw(uint64_t seed) const {
  at::Generator gen = make_generator(seed);
  const auto pick = [&gen](std::size_t n) {
    return static_cast<std::size_t>(at::randint(static_cast<int64_t>(n), {1}, gen, at::kLong).item<int64_t>());
  };
  const std::size_t d = pick(datasets_.size()), a = pick(activations_.size()), w = pick(options_.widths.size()),
                    k = pick(options_.depths.size());
  return ((d * activations_.size() + a) * options_.widths.size() + w) * options_.depths.size() + k;
}

std::string MlpFamilyTask::configuration(Split split, uint64_t seed, int64_t index) const {
  return names_[draw(mix_seed(problem_seed(split, seed, index), kProblemConfigStream))];
}

const MlpTask& MlpFamilyTask::configuration_task(Split split, uint64_t seed, int64_t index) const {
  return *tasks_[draw(mix_seed(problem_seed(split, seed, index), kProblemConfigStream))];
}

OptionMap MlpFamilyTask::options() const {
  OptionMap out = options_.to_map();
  out["configurations"] = std::to_string(tasks_.size());
  std::string validation;
  for (const std::size_t v : validation_) validation += (validation.empty() ? "" : ", ") + names_[v];
  out["validation_configurations"] = validation;
  return out;
}

int64_t MlpFamilyTask::data_bytes_per_problem() const {
  int64_t most = 0;
  for (const auto& t : tasks_) most = std::max(most, t->data_bytes_per_problem());
  return most;
}

std::unique_ptr<ProblemBatch> MlpFamilyTask::sample(Split split, uint64_t seed, int64_t first, int64_t count,
                                                    c10::Device device) const {
  HAMLET_CHECK(count > 0 && first >= 0, "mlp-family: cannot sample ", count, " problems from index ", first);
  const MlpTask& task = configuration_task(split, seed, first);
  for (int64_t i = first + 1; i < first + count; ++i) {
    HAMLET_CHECK(&configuration_task(split, seed, i) == &task, "mlp-family: problems ", first, " (",
                 configuration(split, seed, first), ") and ", i, " (", configuration(split, seed, i),
                 ") have different architectures and cannot share a batch; evaluate one problem per batch (--batch=1)");
  }
  return task.sample(split, seed, first, count, device);
}

const Task& MlpFamilyTask::episode_task(uint64_t seed, int64_t episode) const {
  return *tasks_[draw(mix_seeds({seed, kEpisodeConfigStream, static_cast<uint64_t>(episode)}))];
}

std::vector<TaskComponent> MlpFamilyTask::components() const {
  std::vector<TaskComponent> out;
  for (const std::size_t v : validation_) {
    out.push_back(TaskComponent{names_[v], 1.0 / static_cast<double>(validation_.size()), tasks_[v].get()});
  }
  return out;
}

}  // namespace hamlet::tasks
