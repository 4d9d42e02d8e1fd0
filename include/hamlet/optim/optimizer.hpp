#pragma once
// The one functional update interface shared by hand-designed and learned optimizers.
//
//   StepResult r = opt.update(params, grads, loss, state);   // θ_{t+1} = r.params, state_{t+1} = r.state
//
// Contract:
// - `params`, `grads`: one tensor per optimizee parameter tensor, each [B, ...] with the problem index leading
//   (B independent problems advanced in one tensor program). `loss` is the per-problem loss F(θ_t), [B]; only
//   optimizers whose needs_loss() is true read it (ECDSep).
// - update() never modifies its arguments in place: it returns new parameter tensors and a new state, so the
//   returned θ_{t+1} stays a differentiable function of everything the update used (learned optimizer weights in
//   an unroll). Reductions described as "per tensor" or "global" are taken per problem.
// - Options (hyperparameters) live in the optimizer object and are fixed at construction; per-run buffers live
//   in OptimizerState, created by init() for a given set of parameters.
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>

#include "hamlet/core/options.hpp"
#include "hamlet/core/tensor.hpp"

namespace hamlet::optim {

// Per-run optimizer state. `slots` hold per-parameter buffers (one tensor per parameter tensor, same shape),
// `scalars` hold per-problem quantities ([B]), `step` counts completed updates.
struct OptimizerState {
  int64_t step = 0;
  std::map<std::string, TensorList> slots;
  std::map<std::string, at::Tensor> scalars;
};

struct StepResult {
  TensorList params;     // θ_{t+1}, same shapes as the input params
  OptimizerState state;  // state after the update
  // Optional per-problem ([B]) quantities worth logging, e.g. "energy" for Hamiltonian optimizers.
  std::map<std::string, at::Tensor> diagnostics;
};

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  // Registry name, e.g. "adam".
  virtual std::string name() const = 0;
  // Resolved options, for logs and output files (includes "lr").
  virtual OptionMap options() const = 0;
  // The step size the tuner scans (its "lr" option).
  virtual double learning_rate() const = 0;
  // Fresh state for a run starting at `params` ([B, ...] each).
  virtual OptimizerState init(const TensorList& params) const = 0;
  virtual StepResult update(const TensorList& params, const TensorList& grads, const at::Tensor& loss,
                            const OptimizerState& state) const = 0;
  // Whether update() reads `loss` (the evaluator then passes the per-problem loss values).
  virtual bool needs_loss() const { return false; }
  // Most coordinates (problems x parameters) one tensor program should carry, 0 = no limit. Coordinatewise
  // networks keep several [coordinates, hidden] activations alive per step; past a few MB each they spill out of
  // cache and every op becomes memory-bound, so the evaluator splits problems into smaller chunks.
  virtual int64_t max_batch_coordinates() const { return 0; }
  // Nominal floating-point operations of one update per coordinate (a multiply-add counts 2; an exp, tanh, sqrt or
  // division 1), 0 = not stated. `hamlet benchmark --mode=step` divides it by the machine's measured GEMM rate to
  // print the step's flop floor beside its memory floor (docs/performance.md).
  virtual double flops_per_coordinate() const { return 0; }
  // How many of those flops are activations (tanh, σ, exp, log, softplus), which cost about twenty vector operations
  // each; the benchmark prices them at the measured rate of the kernels' tanh (learned/activation_rate.hpp) and
  // the rest at the GEMM rate. 0 for the hand-designed optimizers (square roots and divisions stay flops).
  virtual double activations_per_coordinate() const { return 0; }
};

using OptimizerPtr = std::shared_ptr<const Optimizer>;

// The shared part of an optimizer configured by an options struct with a spec() (core/option_spec.hpp) and an
// `lr` field: it validates and keeps the options, reports them, and takes its registry name from the spec's owner
// ("adam"), so the name is spelled once.
template <typename Options>
class ConfiguredOptimizer : public Optimizer {
 public:
  explicit ConfiguredOptimizer(Options options = Options()) : options_(std::move(options)) { options_.validate(); }
  const Options& config() const { return options_; }
  std::string name() const override { return Options::spec().owner(); }
  OptionMap options() const override { return options_.to_map(); }
  double learning_rate() const override { return options_.lr; }

 protected:
  Options options_;
};

// Declares the class `Name` of a hand-designed optimizer configured by `Options`: a ConfiguredOptimizer whose
// init() and update() its .cpp defines (the header's comment states its update and state).
#define HAMLET_HAND_DESIGNED_OPTIMIZER(Name, Options)                                              \
  class Name final : public ::hamlet::optim::ConfiguredOptimizer<Options> {                        \
   public:                                                                                         \
    using ConfiguredOptimizer::ConfiguredOptimizer;                                                \
    ::hamlet::optim::OptimizerState init(const ::hamlet::TensorList& params) const override;       \
    ::hamlet::optim::StepResult update(const ::hamlet::TensorList& params, const ::hamlet::TensorList& grads, \
                                       const at::Tensor& loss,                                     \
                                       const ::hamlet::optim::OptimizerState& state) const override; \
  }

}  // namespace hamlet::optim
