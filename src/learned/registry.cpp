#include "hamlet/learned/registry.hpp"

#include <functional>
#include <set>

#include "hamlet/core/error.hpp"
#include "hamlet/core/registry.hpp"
#include "hamlet/core/options_json.hpp"
#include "hamlet/io/h5.hpp"
#include "hamlet/learned/lstm.hpp"
#include "hamlet/learned/mlp_lopt.hpp"
#include "hamlet/learned/phnn.hpp"
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
                                                     });
  return r;
}

// Opens `path` as a weights file: checks its checksum and that it is one, naming what it is otherwise (a run file or
// a checkpoint given as weights is a common slip).
void check_weights_file(const io::H5Reader& reader, const std::string& path) {
  std::string kind;
  if (reader.has_attribute("/", "kind")) {
    kind = "a hamlet " + reader.attribute_string("/", "kind") + " run file";
  } else if (reader.exists("/meta_state")) {
    kind = "a meta-training checkpoint (--checkpoint)";
  } else if (!reader.exists("/weights") || !reader.has_attribute("/", "optimizer") ||
             !reader.has_attribute("/", "options") || !reader.has_attribute("/", "architecture")) {
    kind = "an HDF5 file without learned weights";
  }
  HAMLET_CHECK(kind.empty(), path, " is ", kind, ", not a weights file; give the file that hamlet meta-train ",
               "wrote with --weights-out");
  reader.check_integrity("weights file");
}

// Attributes every weight file carries; provenance may not overwrite them.
const std::set<std::string> kReservedAttributes = {"optimizer", "architecture", "options", "num_params"};

}  // namespace

std::vector<std::string> learned_names() { return registry().names(); }

const std::vector<OptionInfo>& learned_options(const std::string& name) { return registry().at(name).options; }

bool is_learned(const std::string& name) { return registry().contains(name); }

LearnedOptimizerPtr make_learned(const std::string& name, OptionMap options) {
  const Spec& e = registry().at(name);
  const auto weights_it = options.find("weights");
  if (weights_it == options.end() || weights_it->second.empty()) {
    options.erase("weights");
    return e.build(options);
  }
  const std::string path = weights_it->second;
  options.erase(weights_it);

  OptionMap recorded;
  {
    const io::H5Reader reader(path);
    check_weights_file(reader, path);
    const std::string file_optimizer = reader.attribute_string("/", "optimizer");
    HAMLET_CHECK(file_optimizer == name, path, ": weights file is for learned optimizer '", file_optimizer, "', not '",
                 name, "'");
    recorded = parse_options_text(reader.attribute_string("/", "options"), path + " options");
  }
  recorded.erase("weights");
  // The file's options are the defaults; explicit options may change behaviour (out_mul, h, ...) but not the
  // architecture the weights were trained for.
  OptionMap file_resolved;
  try {
    file_resolved = e.resolve(recorded);
  } catch (const Error& error) {
    throw Error(detail::concat(path, ": the recorded options do not parse: ", error.what()));
  }
  OptionMap merged = recorded;
  for (const auto& [key, value] : options) merged[key] = value;
  const OptionMap merged_resolved = e.resolve(merged);
  for (const auto& key : e.architecture_keys) {
    const std::string& file_value = file_resolved.at(key);
    const std::string& given = merged_resolved.at(key);
    HAMLET_CHECK(file_value == given, name, ": option ", key, "=", given,
                 " changes the architecture of the weights in ", path, " (", key, "=", file_value,
                 "); drop the option or use a matching weights file");
  }
  merged["weights"] = path;
  LearnedOptimizerPtr optimizer = e.build(merged);
  load_weights(path, *optimizer);
  return optimizer;
}

void save_weights(const std::string& path, const LearnedOptimizer& optimizer, const OptionMap& provenance) {
  const TensorList weights = optimizer.weights();
  const std::vector<std::string> names = optimizer.weight_names();
  HAMLET_CHECK(weights.size() == names.size(), optimizer.name(), ": ", weights.size(), " weights but ", names.size(),
               " names");
  OptionMap recorded = optimizer.options();
  recorded.erase("weights");
  io::H5Writer writer(path);
  // float64 holds float32 and float64 weights exactly, so a round trip is bitwise.
  for (std::size_t i = 0; i < weights.size(); ++i) {
    writer.write("/weights/" + names[i], weights[i].detach().to(at::kCPU, at::kDouble));
  }
  writer.set_attribute("/", "optimizer", optimizer.name());
  writer.set_attribute("/", "architecture", optimizer.architecture());
  writer.set_attribute("/", "options", options_to_json(recorded));
  writer.set_attribute("/", "num_params", optimizer.num_params());
  for (const auto& [key, value] : provenance) {
    HAMLET_CHECK(!kReservedAttributes.count(key), path, ": provenance key '", key,
                 "' is reserved for the weight file's own attributes");
    writer.set_attribute("/", key, value);
  }
  writer.commit();
}

void load_weights(const std::string& path, LearnedOptimizer& optimizer) {
  const io::H5Reader reader(path);
  check_weights_file(reader, path);
  const std::string file_optimizer = reader.attribute_string("/", "optimizer");
  HAMLET_CHECK(file_optimizer == optimizer.name(), path, ": weights file is for learned optimizer '", file_optimizer,
               "', not '", optimizer.name(), "'");
  const std::string file_architecture = reader.attribute_string("/", "architecture");
  HAMLET_CHECK(file_architecture == optimizer.architecture(), path, ": weights are for architecture '",
               file_architecture, "', the optimizer is '", optimizer.architecture(), "'");
  const TensorList current = optimizer.weights();
  const std::vector<std::string> names = optimizer.weight_names();
  std::vector<std::string> stored = reader.children("/weights");
  std::set<std::string> expected(names.begin(), names.end());
  HAMLET_CHECK(std::set<std::string>(stored.begin(), stored.end()) == expected, path, ": holds ", stored.size(),
               " weights that do not match the ", names.size(), " weights of ", optimizer.architecture());
  TensorList loaded;
  for (std::size_t i = 0; i < names.size(); ++i) {
    const at::Tensor value = reader.read("/weights/" + names[i]);
    HAMLET_CHECK(value.sizes() == current[i].sizes(), path, ": weight '", names[i], "' has shape ", value.sizes(),
                 ", the optimizer expects ", current[i].sizes());
    loaded.push_back(
        value.to(current[i].device(), current[i].scalar_type()).requires_grad_(current[i].requires_grad()));
  }
  optimizer.set_weights(loaded);
}

}  // namespace hamlet::learned
