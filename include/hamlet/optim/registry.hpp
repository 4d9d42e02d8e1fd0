#pragma once
// Construction of optimizers by name, for the CLI, the tuner and experiment configs.
//
//   auto opt = hamlet::optim::make_optimizer("adam", {{"lr", "0.1"}});
//
// Unknown names list the valid ones; unknown or invalid options name the field and the value.
#include <string>
#include <vector>

#include "hamlet/core/options.hpp"
#include "hamlet/core/registry.hpp"
#include "hamlet/optim/optimizer.hpp"

namespace hamlet::optim {

// Names of the hand-designed optimizers, in table order:
// sgd, momentum, nag, adam, rmsprop, symplectic-euler, symplectic, ecdsep, then any registered at run time.
std::vector<std::string> hand_designed_names();
// Builds a hand-designed optimizer from its name and options (keys as in each options struct, e.g. "lr",
// "momentum", "beta1"). Throws hamlet::Error for an unknown name (listing the valid ones) or bad options.
OptimizerPtr make_optimizer(const std::string& name, OptionMap options);
// The options `name` takes, with defaults and help.
const std::vector<OptionInfo>& optimizer_options(const std::string& name);

// Adds a hand-designed optimizer from outside hamlet (a test, a user's program), after the built-in ones:
//   hamlet::optim::register_optimizer("my-sgd", hamlet::buildable<hamlet::optim::OptimizerPtr, MySgd, MySgdOptions>());
// It is then known to make_optimizer, the CLI's --optimizers when run in that process, and the tuner.
// docs/extending.md walks through one.
void register_optimizer(const std::string& name, Buildable<OptimizerPtr> entry);

}  // namespace hamlet::optim
