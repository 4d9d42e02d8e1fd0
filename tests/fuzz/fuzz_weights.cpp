// Fuzz target: learned-optimizer weight files, read by io::read_weights through interop::make_learned (options
// recorded in the file, then the weights) and interop::load_weights (into an optimizer built with default options).
//
// Structure-aware (h5_program.hpp explains why and the input format): the first byte picks the learned optimizer,
// the rest is a program of groups, datasets and attributes written with H5Writer into a valid HDF5 file. A
// hamlet::Error from the readers is the expected answer to a bad file; a crash, a sanitizer report or any other
// exception type (c10::Error, std::out_of_range, ...) escaping them is a finding.
#include <map>

#include "h5_program.hpp"
#include "hamlet/core/options_json.hpp"
#include "hamlet/interop/learned_files.hpp"
#include "hamlet/learned/registry.hpp"

using namespace hamlet;

namespace {

std::string g_path;

void run(const uint8_t* data, std::size_t size, bool strict) {
  fuzz::Cursor in(data, size);
  const auto names = learned::learned_names();
  const std::string name = names[in.u8() % names.size()];
  fuzz::write_program(in, g_path);
  try {
    interop::make_learned(name, {{"weights", g_path}});
  } catch (const Error&) {
    if (strict) throw;
  }
  try {
    const auto optimizer = learned::make_learned(name, {});
    interop::load_weights(g_path, *optimizer);
  } catch (const Error&) {
    if (strict) throw;
  }
}

// One valid weight file per learned optimizer: its default weights' names and shapes and its recorded attributes.
std::vector<std::pair<std::string, std::string>> seeds() {
  std::vector<std::pair<std::string, std::string>> out;
  const auto names = learned::learned_names();
  for (std::size_t i = 0; i < names.size(); ++i) {
    const auto optimizer = learned::make_learned(names[i], {});
    fuzz::Encoder e;
    e.u8(static_cast<uint8_t>(i));
    const auto weights = optimizer->weights();
    const auto weight_names = optimizer->weight_names();
    for (std::size_t k = 0; k < weights.size(); ++k) e.dataset("/weights/" + weight_names[k], weights[k], false);
    OptionMap options = optimizer->options();
    options.erase("weights");
    e.attribute("/", "optimizer", names[i]);
    e.attribute("/", "architecture", optimizer->architecture());
    e.attribute("/", "options", options_to_json(options));
    e.attribute("/", "num_params", optimizer->num_params());
    out.emplace_back("valid_" + names[i], e.bytes());
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  g_path = fuzz::scratch_file("weights", ".h5");
  // The dictionaries learn the real weight names, architectures and recorded options.
  for (const auto& name : learned::learned_names()) {
    const auto optimizer = learned::make_learned(name, {});
    for (const auto& w : optimizer->weight_names()) {
      fuzz::add_unique(fuzz::names(), w);
      fuzz::add_unique(fuzz::paths(), "/weights/" + w);
    }
    OptionMap options = optimizer->options();
    options.erase("weights");
    fuzz::add_unique(fuzz::texts(), optimizer->architecture());
    fuzz::add_unique(fuzz::texts(), options_to_json(options));
    fuzz::add_unique(fuzz::texts(), format_options(options));
  }
  fuzz::maybe_write_seeds(seeds(), [](const uint8_t* d, std::size_t n) { run(d, n, true); });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  run(data, size, fuzz::strict());
  return 0;
}
