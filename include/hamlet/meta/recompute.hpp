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
#include "hamlet/learned/learned_optimizer.hpp"

namespace hamlet::meta {

// Same contract as optimizer.update(params, grads, loss, state) (hamlet/optim/optimizer.hpp); `optimizer` is
// non-const because the backward pass swaps its weights for fresh leaves while it re-runs the step and then puts
// the original tensors back.
optim::StepResult recomputed_update(learned::LearnedOptimizer& optimizer, const TensorList& params,
                                    const TensorList& grads, const at::Tensor& loss,
                                    const optim::OptimizerState& state);

}  // namespace hamlet::meta
