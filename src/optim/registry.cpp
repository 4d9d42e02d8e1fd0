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
Buildable<OptimizerPtr> entry() {
  return buildable<OptimizerPtr, Algorithm, Options>();
}

// Table order is the order of hand_designed_names(): sgd, momentum, nag, adam, rmsprop, symplectic-euler,
// symplectic, ecdsep; register_optimizer() appends.
Registry<Buildable<OptimizerPtr>>& registry() {
  static Registry<Buildable<OptimizerPtr>> r("optimizer", {
                                                              {"sgd", entry<Sgd, SgdOptions>()},
                                                              {"momentum", entry<Momentum, MomentumOptions>()},
                                                              {"nag", entry<Nag, NagOptions>()},
                                                              {"adam", entry<Adam, AdamOptions>()},
                                                              {"rmsprop", entry<RmsProp, RmsPropOptions>()},
                                                              {"symplectic-euler", entry<SymplecticEuler, SymplecticEulerOptions>()},
                                                              {"symplectic", entry<AdvancedSymplectic, SymplecticOptions>()},
                                                              {"ecdsep", entry<Ecdsep, EcdsepOptions>()},
                                                          });
  return r;
}

}  // namespace

std::vector<std::string> hand_designed_names() { return registry().names(); }

OptimizerPtr make_optimizer(const std::string& name, OptionMap options) {
  return registry().at(name).make(std::move(options));
}

const std::vector<OptionInfo>& optimizer_options(const std::string& name) { return registry().at(name).options; }

void register_optimizer(const std::string& name, Buildable<OptimizerPtr> entry) {
  registry().add(name, std::move(entry));
}

}  // namespace hamlet::optim
