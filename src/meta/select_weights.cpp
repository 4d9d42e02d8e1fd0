#include "hamlet/meta/select_weights.hpp"

#include <nlohmann/json.hpp>

#include <cmath>
#include <limits>
#include <set>

#include "hamlet/core/error.hpp"
#include "hamlet/io/weights_file.hpp"
#include "hamlet/meta/run_config.hpp"

namespace hamlet::meta {
namespace {

// The provenance of one weight file, flattened to "group.key" -> value so that any two files compare key by key.
struct Provenance {
  OptionMap identity;  // must agree between candidates
  OptionMap free;      // may differ
  double best_score = 0;
};

const std::set<std::string> kValidationKeys = {"horizon", "validation_problems", "validation_seed"};

// A string attribute the selection cannot do without.
const std::string& required(const io::WeightsRecord& w, const std::string& key, const std::string& value) {
  HAMLET_CHECK(!value.empty(), w.path, " has no ", key, " attribute");
  return value;
}

double parse_score(const std::string& text) {
  const auto score = parse_number(text);
  if (score && std::isfinite(*score)) return *score;
  return std::numeric_limits<double>::quiet_NaN();  // unparsable, "nan", "inf": a diverged run
}

Provenance read_provenance(const std::string& path) {
  const io::WeightsRecord file = io::read_weights(path, io::WeightsPart::kProvenance);
  HAMLET_CHECK(!file.names.empty(), path, " is not a hamlet weight file (no /weights group)");
  const auto score = file.provenance.find("best_score");
  HAMLET_CHECK(score != file.provenance.end(), path,
               " has no best_score attribute: only weights written by `hamlet meta-train` carry the validation score "
               "a selection needs");
  Provenance p;
  p.best_score = parse_score(score->second);
  p.identity["optimizer"] = required(file, "optimizer", file.optimizer);
  p.identity["architecture"] = required(file, "architecture", file.architecture);
  const auto task = file.provenance.find("task");
  p.identity["task"] = required(file, "task", task == file.provenance.end() ? "" : task->second);
  for (const auto& [k, v] : io::provenance_options(file, "task_options")) {
    (tasks::is_data_location_option(k) ? p.free : p.identity)["task." + k] = v;
  }
  OptionMap meta = io::provenance_options(file, "meta_train");
  // Weights meta-trained before the estimator option existed were trained by the default estimator.
  if (!meta.empty()) meta.emplace("estimator", EstimatorOptions().name);
  for (const auto& [k, v] : meta) (kValidationKeys.count(k) ? p.identity : p.free)["meta_train." + k] = v;
  for (const auto& [k, v] : file.options) p.free["optimizer." + k] = v;
  return p;
}

}  // namespace

WeightSelection select_weights(const std::vector<std::string>& weight_files) {
  HAMLET_CHECK(!weight_files.empty(), "select: no weight files given");
  std::vector<Provenance> provenance;
  provenance.reserve(weight_files.size());
  for (const auto& path : weight_files) provenance.push_back(read_provenance(path));

  // A key only some files have was added to hamlet after the others were written (it had its default then), so
  // only keys both files of a pair hold are compared, and only keys every file holds can count as varied.
  for (std::size_t i = 0; i < provenance.size(); ++i) {
    for (std::size_t j = i + 1; j < provenance.size(); ++j) {
      for (const auto& [key, a] : provenance[i].identity) {
        const auto it = provenance[j].identity.find(key);
        if (it == provenance[j].identity.end()) continue;
        HAMLET_CHECK(a == it->second, "select: ", weight_files[i], " and ", weight_files[j],
                     " are not scored on the same validation problems: ", key, " is ", a, " in the first, ",
                     it->second, " in the second");
      }
    }
  }
  const Provenance& first = provenance.front();

  WeightSelection out;
  for (const auto& [key, v0] : first.free) {
    bool everywhere = true, differs = false;
    for (const auto& p : provenance) {
      const auto it = p.free.find(key);
      everywhere = everywhere && it != p.free.end();
      differs = differs || (it != p.free.end() && it->second != v0);
    }
    if (everywhere && differs) out.varied_keys.push_back(key);
  }
  bool any_finite = false;
  for (std::size_t i = 0; i < provenance.size(); ++i) {
    WeightCandidate c;
    c.path = weight_files[i];
    c.best_score = provenance[i].best_score;
    for (const auto& key : out.varied_keys) c.varied[key] = provenance[i].free.at(key);
    if (std::isfinite(c.best_score) &&
        (!any_finite || c.best_score < out.candidates[out.chosen].best_score)) {
      out.chosen = i;
      any_finite = true;
    }
    out.candidates.push_back(std::move(c));
  }
  HAMLET_CHECK(any_finite, "select: no candidate has a finite validation score (every run diverged): ",
               weight_files[0], (weight_files.size() > 1 ? " ..." : ""));
  return out;
}

std::string selection_to_json(const WeightSelection& selection) {
  nlohmann::ordered_json doc;
  doc["rule"] = "lowest validation score (best_score of hamlet meta-train); ties: the first given";
  doc["chosen"] = selection.candidates.at(selection.chosen).path;
  doc["varied_keys"] = selection.varied_keys;
  doc["candidates"] = nlohmann::ordered_json::array();
  for (std::size_t i = 0; i < selection.candidates.size(); ++i) {
    const WeightCandidate& c = selection.candidates[i];
    nlohmann::ordered_json entry;
    entry["path"] = c.path;
    entry["best_score"] = std::isfinite(c.best_score) ? nlohmann::ordered_json(c.best_score) : nullptr;
    entry["varied"] = c.varied;
    entry["chosen"] = i == selection.chosen;
    doc["candidates"].push_back(entry);
  }
  return doc.dump(2) + "\n";
}

}  // namespace hamlet::meta
