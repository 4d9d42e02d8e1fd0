#include "hamlet/learned/registry.hpp"

#include <algorithm>
#include <functional>
#include <map>

#include "hamlet/core/error.hpp"
#include "hamlet/core/registry.hpp"
#include "hamlet/learned/lstm.hpp"
#include "hamlet/learned/mlp_lopt.hpp"
#include "hamlet/learned/phnn.hpp"
#include "hamlet/learned/phnn_lift.hpp"
#include "hamlet/learned/phnn_paper.hpp"

namespace hamlet::learned {
namespace {

// What the registry knows of a learned optimizer beyond its name.
struct Spec {
  // Parses, validates and re-renders options: the canonical form used to compare values ("1" vs "true").
  std::function<OptionMap(const OptionMap&)> resolve;
  std::function<LearnedOptimizerPtr(const OptionMap&)> build;
  std::vector<std::string> architecture_keys;
  std::vector<OptionInfo> options;  // with this name's defaults
};

template <typename Options, typename Optimizer>
Spec spec() {
  return {[](const OptionMap& o) { return Options::from_map(o).to_map(); },
          [](const OptionMap& o) -> LearnedOptimizerPtr { return std::make_shared<Optimizer>(Options::from_map(o)); },
          Options::spec().architecture_keys(), Options::spec().describe()};
}

// "phnn" and "phnn-features" are one class with other defaults; each name keeps its own inputs, so that the
// registry name and Phnn::name() (recorded in weight files) always agree.
PhnnOptions phnn_options(const std::string& name, const OptionMap& o) {
  const bool features = name == "phnn-features";
  const PhnnOptions parsed = PhnnOptions::from_map(o, features ? phnn_features_defaults() : PhnnOptions{});
  HAMLET_CHECK(parsed.lopt_features() == features, name, ".inputs=", parsed.inputs, " is not available for ", name,
               features ? " (it is the gradient-input phnn)" : " (use the learned optimizer phnn-features)");
  return parsed;
}

Spec phnn_spec(const std::string& name) {
  return {[name](const OptionMap& o) { return phnn_options(name, o).to_map(); },
          [name](const OptionMap& o) -> LearnedOptimizerPtr { return std::make_shared<Phnn>(phnn_options(name, o)); },
          PhnnOptions::spec().architecture_keys(),
          PhnnOptions::spec().describe(name == "phnn-features" ? phnn_features_defaults() : PhnnOptions{})};
}

// Table order is the order of learned_names().
const Registry<Spec>& registry() {
  static const Registry<Spec> r("learned optimizer", {
                                                         {"phnn-paper", spec<PhnnPaperOptions, PhnnPaper>()},
                                                         {"phnn", phnn_spec("phnn")},
                                                         {"lstm", spec<LstmOptions, LstmOptimizer>()},
                                                         {"mlp-lopt", spec<MlpLoptOptions, MlpLopt>()},
                                                         {"phnn-features", phnn_spec("phnn-features")},
                                                         {"phnn-lift", spec<PhnnLiftOptions, PhnnLift>()},
                                                     });
  return r;
}

// The weights of `trained` in the order of `names`, checked to be exactly those names.
TensorList weights_by_name(const TrainedWeights& trained, const std::vector<std::string>& names,
                           const std::string& architecture) {
  HAMLET_CHECK(trained.names.size() == trained.values.size(), trained.source, ": ", trained.values.size(),
               " weights but ", trained.names.size(), " names");
  std::map<std::string, at::Tensor> stored;
  for (std::size_t i = 0; i < trained.names.size(); ++i) stored[trained.names[i]] = trained.values[i];
  HAMLET_CHECK(stored.size() == names.size() && std::all_of(names.begin(), names.end(),
                                                            [&](const std::string& n) { return stored.count(n); }),
               trained.source, ": holds ", trained.names.size(), " weights that do not match the ", names.size(),
               " weights of ", architecture);
  TensorList out;
  for (const auto& name : names) out.push_back(stored.at(name));
  return out;
}

}  // namespace

std::vector<std::string> learned_names() { return registry().names(); }

const std::vector<OptionInfo>& learned_options(const std::string& name) { return registry().at(name).options; }

bool is_learned(const std::string& name) { return registry().contains(name); }

LearnedOptimizerPtr make_learned(const std::string& name, OptionMap options) {
  const Spec& e = registry().at(name);
  const auto weights = options.find("weights");
  HAMLET_CHECK(weights == options.end() || weights->second.empty(), name, ": option weights=", weights->second,
               " names a weights file, which this function does not read; use interop::make_learned (it reads the "
               "file) or make_learned(name, options, trained)");
  options.erase("weights");
  return e.build(options);
}

LearnedOptimizerPtr make_learned(const std::string& name, OptionMap options, const TrainedWeights& trained) {
  const Spec& e = registry().at(name);
  HAMLET_CHECK(trained.optimizer == name, trained.source, ": weights file is for learned optimizer '",
               trained.optimizer, "', not '", name, "'");
  options.erase("weights");
  OptionMap recorded = trained.options;
  recorded.erase("weights");
  // The recorded options are the defaults; explicit options may change behaviour (out_mul, h, ...) but not the
  // architecture the weights were trained for.
  OptionMap file_resolved;
  try {
    file_resolved = e.resolve(recorded);
  } catch (const Error& error) {
    throw Error(detail::concat(trained.source, ": the recorded options do not parse: ", error.what()));
  }
  OptionMap merged = recorded;
  for (const auto& [key, value] : options) merged[key] = value;
  const OptionMap merged_resolved = e.resolve(merged);
  for (const auto& key : e.architecture_keys) {
    const std::string& file_value = file_resolved.at(key);
    const std::string& given = merged_resolved.at(key);
    HAMLET_CHECK(file_value == given, name, ": option ", key, "=", given,
                 " changes the architecture of the weights in ", trained.source, " (", key, "=", file_value,
                 "); drop the option or use a matching weights file");
  }
  merged["weights"] = trained.source;
  LearnedOptimizerPtr optimizer = e.build(merged);
  set_trained_weights(*optimizer, trained);
  return optimizer;
}

TrainedWeights trained_weights(const LearnedOptimizer& optimizer) {
  TrainedWeights out;
  out.optimizer = optimizer.name();
  out.architecture = optimizer.architecture();
  out.options = optimizer.options();
  out.options.erase("weights");
  out.names = optimizer.weight_names();
  for (const auto& w : optimizer.weights()) out.values.push_back(w.detach().to(at::kCPU, at::kDouble));
  HAMLET_CHECK(out.values.size() == out.names.size(), optimizer.name(), ": ", out.values.size(), " weights but ",
               out.names.size(), " names");
  return out;
}

void set_trained_weights(LearnedOptimizer& optimizer, const TrainedWeights& trained) {
  HAMLET_CHECK(trained.optimizer == optimizer.name(), trained.source, ": weights file is for learned optimizer '",
               trained.optimizer, "', not '", optimizer.name(), "'");
  HAMLET_CHECK(trained.architecture == optimizer.architecture(), trained.source, ": weights are for architecture '",
               trained.architecture, "', the optimizer is '", optimizer.architecture(), "'");
  const TensorList current = optimizer.weights();
  const std::vector<std::string> names = optimizer.weight_names();
  const TensorList values = weights_by_name(trained, names, optimizer.architecture());
  TensorList loaded;
  for (std::size_t i = 0; i < names.size(); ++i) {
    HAMLET_CHECK(values[i].sizes() == current[i].sizes(), trained.source, ": weight '", names[i], "' has shape ",
                 values[i].sizes(), ", the optimizer expects ", current[i].sizes());
    loaded.push_back(
        values[i].to(current[i].device(), current[i].scalar_type()).requires_grad_(current[i].requires_grad()));
  }
  optimizer.set_weights(loaded);
}

}  // namespace hamlet::learned
