#include "hamlet/meta/gradient_estimator.hpp"

#include <algorithm>

#include "hamlet/core/error.hpp"
#include "hamlet/meta/bptt.hpp"
#include "hamlet/meta/es.hpp"
#include "hamlet/meta/pes.hpp"

namespace hamlet::meta {
namespace {

Registry<EstimatorEntry>& registry() {
  static Registry<EstimatorEntry> r(
      "estimator",
      {
          {"bptt", {[](const MetaTrainOptions& o) -> GradientEstimatorPtr {
                      return std::make_unique<TruncatedBptt>(o.schedule, o.estimator.bptt, o.parallel);
                    },
                    BpttOptions::spec().keys()}},
          {"es", {[](const MetaTrainOptions& o) -> GradientEstimatorPtr {
                    return std::make_unique<TruncatedEs>(o.schedule, o.estimator.es, o.parallel);
                  },
                  EsOptions::spec().keys()}},
          {"pes", {[](const MetaTrainOptions& o) -> GradientEstimatorPtr {
                     return std::make_unique<PersistentEs>(o.schedule, o.estimator.es, o.parallel);
                   },
                   EsOptions::spec().keys()}},
      });
  return r;
}

}  // namespace

const Registry<EstimatorEntry>& estimators() { return registry(); }

std::string default_estimator_name() { return registry().names().front(); }

void register_estimator(const std::string& name, EstimatorEntry entry) { registry().add(name, std::move(entry)); }

std::string estimator_help() {
  std::string names;
  for (const auto& n : estimators().names()) names += (names.empty() ? "" : " | ") + n;
  return "meta-gradient estimator: " + names + " (docs/methods.md §10)";
}

GradientEstimatorPtr make_estimator(const MetaTrainOptions& options) {
  return estimators().at(options.estimator.name).make(options);
}

void check_rank_units(const std::string& what, int64_t units, int64_t world_size, const std::string& why) {
  HAMLET_CHECK(world_size >= 1 && units % world_size == 0, what, " (", units,
               ") must be a multiple of the world size (", world_size, "): ", why);
}

void check_unread_estimator_options(const std::string& owner, const EstimatorOptions& options) {
  if (!estimators().contains(options.name)) return;  // the field check names the unknown estimator
  const std::vector<std::string>& reads = estimators().at(options.name).reads;
  const OptionMap given = options.to_map(), defaults = EstimatorOptions().to_map();
  for (const auto& [key, value] : given) {
    if (key == "estimator" || std::find(reads.begin(), reads.end(), key) != reads.end()) continue;
    HAMLET_CHECK(value == defaults.at(key), owner, ".", key, " is ", value, ", but ", owner,
                 ".estimator=", options.name, " does not read it (the default is ", defaults.at(key), ")");
  }
}

}  // namespace hamlet::meta
