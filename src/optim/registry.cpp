#include "hamlet/optim/registry.hpp"

#include <utility>

#include "hamlet/core/registry.hpp"
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

template <typename Algorithm, typename Options>
OptimizerPtr make(OptionMap options) {
  return std::make_shared<const Algorithm>(Options::from_map(std::move(options)));
}

// Table order is the order of hand_designed_names().
const Registry<Factory<OptimizerPtr>>& registry() {
  static const Registry<Factory<OptimizerPtr>> r("optimizer", {
                                                         {"sgd", make<Sgd, SgdOptions>},
                                                         {"momentum", make<Momentum, MomentumOptions>},
                                                         {"nag", make<Nag, NagOptions>},
                                                         {"adam", make<Adam, AdamOptions>},
                                                         {"rmsprop", make<RmsProp, RmsPropOptions>},
                                                         {"symplectic-euler", make<SymplecticEuler, SymplecticEulerOptions>},
                                                         {"symplectic", make<AdvancedSymplectic, SymplecticOptions>},
                                                         {"ecdsep", make<Ecdsep, EcdsepOptions>},
                                                     });
  return r;
}

}  // namespace

std::vector<std::string> hand_designed_names() { return registry().names(); }

OptimizerPtr make_optimizer(const std::string& name, OptionMap options) {
  return registry().at(name)(std::move(options));
}

}  // namespace hamlet::optim
