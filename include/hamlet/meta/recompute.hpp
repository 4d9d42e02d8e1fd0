#pragma once
// Per-step activation recomputation (gradient checkpointing) for meta-training.
//
// A learned optimizer's step on an MNIST MLP runs its network on every coordinate (B · 15,910 rows); storing
// those activations for all U steps of a window is what makes unrolled meta-training memory-hungry (GBs at
// B = 20, U = 20). recomputed_update() returns the same values as optimizer.update() but records only ONE autograd
// node per step, which keeps the step's inputs (θ_t, g_t, the carried state, the weights φ) and nothing of the
// network's insides. When the meta-backward reaches the node it re-runs the step with autograd on and
// back-propagates through that local graph, so the network's activations exist for one step at a time.
//
// Cost: one extra forward pass of the optimizer per step during the meta-backward. Result: the same meta-gradients
// up to floating-point reassociation (tested against the stored-graph path at 1e-10 in float64). What stays in
// memory per step is θ_t, g_t, the state and the optimizee's own graph (the MLP activations), so the carried
// state dominates: the LSTM's 4 · 20 values per coordinate are kept, phnn's momentum is one value per coordinate.
//
// The optimizer's weight tensors must stay the same objects between the forward and the backward (meta_train
// changes them only after its backward). Non-differentiable parts of the result (the step counter, diagnostics)
// come back detached.
#include <functional>

#include "hamlet/learned/learned_optimizer.hpp"

namespace hamlet::meta {

// Same contract as optimizer.update(params, grads, loss, state) (hamlet/optim/optimizer.hpp); `optimizer` is
// non-const because the backward pass swaps its weights for fresh leaves while it re-runs the step and then puts
// the original tensors back.
optim::StepResult recomputed_update(learned::LearnedOptimizer& optimizer, const TensorList& params,
                                    const TensorList& grads, const at::Tensor& loss,
                                    const optim::OptimizerState& state);

// √U checkpointing (issue "steps at model scale"): a stretch of consecutive steps of a window as ONE autograd node
// that keeps only the stretch's inputs (θ at its start, the carried state, the weights φ), not one record per step.
// `body(params, state, replay)` runs the stretch from (params, state) and returns its end (θ, state) and the sum of
// its loss terms (a scalar); checkpointed_segment calls it once under no-grad (replay = false: the body may update
// host-side counters then), keeps the inputs, and when the meta-backward reaches the node calls it again with
// autograd on from fresh leaves of the same values (replay = true: counters must not be touched again, every host
// decision must come out the same) and back-propagates through that local graph. Inside, the body should use
// recomputed_update for each step, so the replay holds one record per step of one stretch at a time: a window of U
// steps in stretches of k then keeps about U/k + k step records instead of U (k = ⌈√U⌉ gives 2√U).
//
// The body and everything it refers to must outlive the meta-backward of the window; the optimizer's weights must
// stay the same tensors until then (as for recomputed_update).
struct SegmentResult {
  TensorList params;
  optim::OptimizerState state;
  at::Tensor loss;  // scalar: the stretch's summed loss terms (a zero scalar if it has none)
};
using SegmentBody =
    std::function<SegmentResult(const TensorList& params, const optim::OptimizerState& state, bool replay)>;
SegmentResult checkpointed_segment(learned::LearnedOptimizer& optimizer, const TensorList& params,
                                   const optim::OptimizerState& state, const SegmentBody& body);

}  // namespace hamlet::meta
