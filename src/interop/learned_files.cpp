#include "hamlet/interop/learned_files.hpp"

#include "hamlet/optim/registry.hpp"

namespace hamlet::interop {

learned::TrainedWeights to_trained(const io::WeightsRecord& record) {
  learned::TrainedWeights t;
  t.source = record.path;
  t.optimizer = record.optimizer;
  t.architecture = record.architecture;
  t.options = record.options;
  t.names = record.names;
  t.values = record.weights;
  return t;
}

io::WeightsRecord to_record(const learned::LearnedOptimizer& optimizer, const OptionMap& provenance) {
  learned::TrainedWeights t = learned::trained_weights(optimizer);
  io::WeightsRecord r;
  r.optimizer = t.optimizer;
  r.architecture = t.architecture;
  r.options = std::move(t.options);
  r.num_params = optimizer.num_params();
  r.names = std::move(t.names);
  r.weights = std::move(t.values);
  r.provenance = provenance;
  return r;
}

learned::LearnedOptimizerPtr make_learned(const std::string& name, const OptionMap& options) {
  const auto weights = options.find("weights");
  if (weights == options.end() || weights->second.empty()) {
    OptionMap fresh = options;
    fresh.erase("weights");
    return learned::make_learned(name, fresh);
  }
  return learned::make_learned(name, options, to_trained(io::read_weights(weights->second)));
}

optim::OptimizerPtr make_optimizer(const std::string& name, const OptionMap& options) {
  if (learned::is_learned(name)) return make_learned(name, options);
  return optim::make_optimizer(name, options);
}

void save_weights(const std::string& path, const learned::LearnedOptimizer& optimizer, const OptionMap& provenance) {
  io::write_weights(path, to_record(optimizer, provenance));
}

void load_weights(const std::string& path, learned::LearnedOptimizer& optimizer) {
  learned::set_trained_weights(optimizer, to_trained(io::read_weights(path)));
}

}  // namespace hamlet::interop
