#pragma once
// Hand-designed optimizers whose update is one elementwise rule applied to every parameter tensor on its own (sgd,
// momentum, nag, rmsprop): a class names its per-parameter buffers and writes the rule for one tensor; init() (the
// buffers at zero) and update() come from here. A parameter whose gradient is undefined keeps its value and buffers.
#include <ATen/ATen.h>

#include <cstddef>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "hamlet/optim/optimizer.hpp"

namespace hamlet::optim {

namespace detail {
// One parameter's step for per_parameter_update: reads θ_i, g_i and the parameter's buffers (one per slot, in
// the order the slots were named), replaces the buffers with their next values and returns θ_i's next value.
using ParamStep =
    std::function<at::Tensor(std::size_t index, const at::Tensor& param, const at::Tensor& grad, TensorList& buffers)>;
// The update of an optimizer that treats each parameter tensor on its own: checks the arguments, applies `step`
// to every parameter with a defined gradient, passes the others (and their buffers) through unchanged, stores the
// buffers back into their slots and counts the step.
StepResult per_parameter_update(const std::string& owner, const TensorList& params, const TensorList& grads,
                                const OptimizerState& state, const std::vector<std::string>& slots,
                                const ParamStep& step);
// A state with the named slots at zero for every parameter.
OptimizerState zero_slots(const TensorList& params, const std::vector<std::string>& slots);
}  // namespace detail

template <typename Options>
class ElementwiseOptimizer : public ConfiguredOptimizer<Options> {
 public:
  // `slots`: the names of the per-parameter buffers (state slots), in the order step() receives them.
  ElementwiseOptimizer(Options options, std::vector<std::string> slots)
      : ConfiguredOptimizer<Options>(std::move(options)), slots_(std::move(slots)) {}
  OptimizerState init(const TensorList& params) const override { return detail::zero_slots(params, slots_); }
  StepResult update(const TensorList& params, const TensorList& grads, const at::Tensor& loss,
                    const OptimizerState& state) const override {
    return detail::per_parameter_update(
        this->name(), params, grads, state, slots_,
        [this](std::size_t, const at::Tensor& p, const at::Tensor& g, TensorList& buffers) { return step(p, g, buffers); });
  }

 protected:
  // The rule for one parameter tensor θ [B, ...] with gradient g (same shape) and its buffers (one per slot, same
  // shape): replaces the buffers with their next values and returns θ's next value.
  virtual at::Tensor step(const at::Tensor& param, const at::Tensor& grad, TensorList& buffers) const = 0;

 private:
  std::vector<std::string> slots_;
};

}  // namespace hamlet::optim
