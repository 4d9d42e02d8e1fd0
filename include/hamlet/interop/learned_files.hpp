#pragma once
// Learned optimizers from and to weights files: the bridge between `learned` (which knows no files) and `io`
// (which knows no optimizers). Everything that takes the option "weights=PATH" builds through here: the CLI
// (--optimizer.NAME.weights=PATH), TorchOptimizer, the Python package. File format: docs/file_formats.md.
#include <string>

#include "hamlet/core/options.hpp"
#include "hamlet/io/weights_file.hpp"
#include "hamlet/learned/registry.hpp"
#include "hamlet/optim/optimizer.hpp"

namespace hamlet::interop {

// A weights file's record as learned::TrainedWeights (source = the file) and back (provenance as given).
learned::TrainedWeights to_trained(const io::WeightsRecord& record);
io::WeightsRecord to_record(const learned::LearnedOptimizer& optimizer, const OptionMap& provenance = {});

// learned::make_learned, reading the weights file when the option "weights" names one (its recorded options are
// the defaults, see learned::make_learned(name, options, trained)); errors name the file.
learned::LearnedOptimizerPtr make_learned(const std::string& name, const OptionMap& options);
// Any optimizer by registry name: hand-designed (optim::make_optimizer) or learned (make_learned above).
optim::OptimizerPtr make_optimizer(const std::string& name, const OptionMap& options);

// Writes the optimizer's weights, options and `provenance` (string attributes; the record's own names are
// refused) as a weights file.
void save_weights(const std::string& path, const learned::LearnedOptimizer& optimizer, const OptionMap& provenance = {});
// Reads a weights file into `optimizer` (learned::set_trained_weights).
void load_weights(const std::string& path, learned::LearnedOptimizer& optimizer);

}  // namespace hamlet::interop
