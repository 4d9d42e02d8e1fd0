#include "hamlet/optim/registry.hpp"

#include <functional>
#include <utility>

#include "hamlet/core/error.hpp"
#include "hamlet/optim/adam.hpp"
#include "hamlet/optim/ecdsep.hpp"
#include "hamlet/optim/momentum.hpp"
#include "hamlet/optim/nag.hpp"
#include "hamlet/optim/rmsprop.hpp"
#include "hamlet/optim/sgd.hpp"
#include "hamlet/optim/symplectic.hpp"
#include "hamlet/optim/symplectic_euler.hpp"

namespace hamlet::optim {
namespace {

using Factory = std::function<OptimizerPtr(OptionMap)>;

template <typename Algorithm, typename Options>
Factory factory() {
  return [](OptionMap options) -> OptimizerPtr {
    return std::make_shared<const Algorithm>(Options::from_map(std::move(options)));
  };
}

// Table order is the order of hand_designed_names().
const std::vector<std::pair<std::string, Factory>>& table() {
  static const std::vector<std::pair<std::string, Factory>> entries = {
      {"sgd", factory<Sgd, SgdOptions>()},
      {"momentum", factory<Momentum, MomentumOptions>()},
      {"nag", factory<Nag, NagOptions>()},
      {"adam", factory<Adam, AdamOptions>()},
      {"rmsprop", factory<RmsProp, RmsPropOptions>()},
      {"symplectic-euler", factory<SymplecticEuler, SymplecticEulerOptions>()},
      {"symplectic", factory<AdvancedSymplectic, SymplecticOptions>()},
      {"ecdsep", factory<Ecdsep, EcdsepOptions>()},
  };
  return entries;
}

}  // namespace

std::vector<std::string> hand_designed_names() {
  std::vector<std::string> names;
  for (const auto& entry : table()) names.push_back(entry.first);
  return names;
}

OptimizerPtr make_optimizer(const std::string& name, OptionMap options) {
  std::string valid;
  for (const auto& [entry_name, make] : table()) {
    if (entry_name == name) return make(std::move(options));
    valid += (valid.empty() ? "" : ", ") + entry_name;
  }
  throw Error(::hamlet::detail::concat("unknown optimizer '", name, "'; valid names: ", valid));
}

}  // namespace hamlet::optim
