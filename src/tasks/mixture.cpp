#include "hamlet/tasks/mixture.hpp"

#include <boost/program_options.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "hamlet/core/error.hpp"
#include "hamlet/core/seed.hpp"
#include "hamlet/tasks/registry.hpp"

namespace hamlet::tasks {
namespace {

// Keeps the episodes' component draws apart from every other stream derived from the training seed.
constexpr uint64_t kComponentStream = 0x4D495854;  // "MIXT"

struct Declared {
  std::string name, task;
  double weight = 1.0;
  OptionMap options;
};

// The sections of `path` in file order, each with its task, weight and task options.
std::vector<Declared> read_components(const std::string& path) {
  std::error_code ec;
  HAMLET_CHECK(std::filesystem::is_regular_file(path, ec), "mixture.file '", path,
               "' is not a readable file (an INI file with one [section] per component)");
  std::ifstream in(path);
  HAMLET_CHECK(in.good(), "cannot read mixture.file '", path, "'");
  std::vector<boost::program_options::option> raw;
  try {
    raw = boost::program_options::parse_config_file(in, boost::program_options::options_description(), true).options;
  } catch (const boost::program_options::error& e) {
    throw Error("mixture.file '" + path + "': " + e.what());
  }
  std::vector<Declared> out;
  for (const auto& opt : raw) {
    const auto dot = opt.string_key.find('.');
    HAMLET_CHECK(dot != std::string::npos, "mixture.file '", path, "': key '", opt.string_key,
                 "' stands outside a [component] section");
    const std::string section = opt.string_key.substr(0, dot), key = opt.string_key.substr(dot + 1);
    const std::string value = opt.value.empty() ? "" : opt.value[0];
    if (out.empty() || out.back().name != section) {
      for (const auto& d : out) {
        HAMLET_CHECK(d.name != section, "mixture.file '", path, "': section [", section, "] appears twice");
      }
      out.push_back(Declared{section, "", 1.0, {}});
    }
    Declared& d = out.back();
    if (key == "task") {
      d.task = value;
    } else if (key == "weight") {
      OptionMap one{{"weight", value}};
      take_option(one, "mixture [" + section + "]", "weight", d.weight);
    } else {
      HAMLET_CHECK(d.options.emplace(key, value).second, "mixture.file '", path, "': [", section, "] gives '", key,
                   "' twice");
    }
  }
  HAMLET_CHECK(!out.empty(), "mixture.file '", path, "' declares no component");
  return out;
}

}  // namespace

const OptionSpec<MixtureOptions>& MixtureOptions::spec() {
  static const auto s = OptionSpec<MixtureOptions>("mixture").add(
      "file", &MixtureOptions::file, "INI file with one [section] per component: task = NAME, weight = W, its options",
      [](const std::string& field, const std::string& file) {
        HAMLET_CHECK(!file.empty(), field, " is required: the INI file that declares the components");
      });
  return s;
}

MixtureTask::MixtureTask(MixtureOptions options) : options_(std::move(options)) {
  options_.validate();
  double total = 0;
  for (auto& d : read_components(options_.file)) {
    const std::string where = "mixture.file '" + options_.file + "' [" + d.name + "]";
    HAMLET_CHECK(!d.task.empty(), where, " names no task (task = NAME)");
    HAMLET_CHECK(d.task != "mixture", where, ": a mixture cannot contain a mixture; list its components instead");
    HAMLET_CHECK(std::isfinite(d.weight) && d.weight > 0, where, ": weight must be a positive number, got ", d.weight);
    TaskPtr task;
    try {
      task = make_task(d.task, d.options);
    } catch (const Error& e) {
      throw Error(where + ": " + e.what());
    }
    components_.push_back(Component{d.name, d.weight, std::move(task)});
    total += d.weight;
  }
  for (auto& c : components_) c.weight /= total;
}

OptionMap MixtureTask::options() const {
  std::string text;
  for (const auto& c : components_) {
    std::string resolved;
    for (const auto& [key, value] : c.task->options()) {
      if (!is_data_location_option(key)) resolved += (resolved.empty() ? "" : ", ") + key + "=" + value;
    }
    text += (text.empty() ? "" : "; ") + c.name + ": " + c.task->name() + " weight=" + format_number(c.weight) + " (" +
            resolved + ")";
  }
  OptionMap out = options_.to_map();
  out["components"] = text;
  return out;
}

int64_t MixtureTask::data_bytes_per_problem() const {
  int64_t most = 0;
  for (const auto& c : components_) most = std::max(most, c.task->data_bytes_per_problem());
  return most;
}

std::unique_ptr<ProblemBatch> MixtureTask::sample(Split, uint64_t, int64_t, int64_t, c10::Device) const {
  std::string names;
  for (const auto& c : components_) names += (names.empty() ? "" : ", ") + c.name + " (" + c.task->name() + ")";
  throw Error("mixture: a distribution of tasks is for meta-training; its problems are its components' (" + names +
              "): evaluate a component with its own --task");
}

const Task& MixtureTask::episode_task(uint64_t seed, int64_t episode) const {
  at::Generator gen = make_generator(mix_seeds({seed, kComponentStream, static_cast<uint64_t>(episode)}));
  const double u = at::empty({1}, at::kDouble).uniform_(0.0, 1.0, gen).item<double>();
  double cumulative = 0;
  for (const auto& c : components_) {
    cumulative += c.weight;
    if (u < cumulative) return *c.task;
  }
  return *components_.back().task;  // u within rounding of 1
}

std::vector<TaskComponent> MixtureTask::components() const {
  std::vector<TaskComponent> out;
  for (const auto& c : components_) out.push_back(TaskComponent{c.name, c.weight, c.task.get()});
  return out;
}

}  // namespace hamlet::tasks
