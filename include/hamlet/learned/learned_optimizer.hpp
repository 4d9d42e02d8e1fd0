#pragma once
// Learned optimizers: Optimizers whose update is a differentiable function of trainable weights φ.
//
// They implement the same functional interface as the hand-designed optimizers (hamlet/optim/optimizer.hpp),
// so `hamlet evaluate` runs them unchanged and meta-training differentiates θ_{t+1} = update(...) with respect to
// weights(). They are coordinatewise (METHODS.md §0): every scalar parameter of every problem is one row of a
// [R, features] batch (R = B · parameters per problem), and all rows share φ. Per-coordinate carried state lives
// in OptimizerState::slots with one tensor per parameter tensor ([B, ..., k] for k state values per coordinate).
//
// Evaluation calls update() under at::NoGradGuard; an optimizer that needs autograd internally (∂V/∂q of the
// structured PHNN) re-enables it locally and detaches its outputs when its weights do not require grad.
#include <string>
#include <vector>

#include "hamlet/optim/optimizer.hpp"

namespace hamlet::learned {

class LearnedOptimizer : public optim::Optimizer {
 public:
  // The trainable weights in a fixed order, and their names ("V.0.weight", ...). The tensors are the ones the
  // update uses, so gradients of a loss computed through update() with respect to them are meta-gradients.
  virtual TensorList weights() const = 0;
  virtual std::vector<std::string> weight_names() const = 0;
  // Replaces the weights (same order, names and shapes; checked). Used by the meta-optimizer and by loading.
  virtual void set_weights(const TensorList& weights) = 0;
  // Architecture string recorded in weight files, e.g. "phnn-paper d=2 mass_factor=LLt"; loading a file into an
  // optimizer with another architecture string is an error.
  virtual std::string architecture() const = 0;
  // Total number of scalar weights (the paper's parameter count).
  int64_t num_params() const;
  // Makes every weight a leaf that requires grad (true) or a plain tensor (false), keeping the values.
  void set_trainable(bool trainable);
};

using LearnedOptimizerPtr = std::shared_ptr<LearnedOptimizer>;

}  // namespace hamlet::learned
