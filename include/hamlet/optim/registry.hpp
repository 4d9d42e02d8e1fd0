#pragma once
// Construction of optimizers by name, for the CLI, the tuner and experiment configs.
//
//   auto opt = hamlet::optim::make_optimizer("adam", {{"lr", "0.1"}});
//
// Unknown names list the valid ones; unknown or invalid options name the field and the value.
#include <string>
#include <vector>

#include "hamlet/core/options.hpp"
#include "hamlet/optim/optimizer.hpp"

namespace hamlet::optim {

// Names of the hand-designed optimizers, in table order:
// sgd, momentum, nag, adam, rmsprop, symplectic-euler, symplectic, ecdsep.
std::vector<std::string> hand_designed_names();
// Builds a hand-designed optimizer from its name and options (keys as in each options struct, e.g. "lr",
// "momentum", "beta1"). Throws hamlet::Error for an unknown name (listing the valid ones) or bad options.
OptimizerPtr make_optimizer(const std::string& name, OptionMap options);

}  // namespace hamlet::optim
