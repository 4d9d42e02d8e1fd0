#pragma once
// Per-step activation recomputation (gradient checkpointing) for meta-training.
//
// A learned optimizer's step on an MNIST MLP runs its network on every coordinate (B · 15,910 rows); storing
// those activations for all U steps of a window is what makes unrolled meta-training memory-hungry (GBs at
// B = 20, U = 20). recomputed_update() returns the values of optimizer.update() (run in problem groups, below) but
// records only ONE autograd node per step, which keeps the step's inputs (θ_t, g_t, the carried state, the weights
// φ) and nothing of the network's insides. When the meta-backward reaches the node it re-runs the step with autograd
// on and back-propagates through that local graph, so the network's activations exist for one step (and one group
// of problems) at a time.
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
//
// Problem groups: when optimizer.updates_problems_independently() (learned_optimizer.hpp) and every per-problem
// tensor (params, grads, the state's slots and scalars, a defined loss, the cotangents) carries the B problems
// along dim 0, the node runs the step a group of problems at a time, in its forward (update_in_groups below) and in
// its backward: there each group's inputs, loss and cotangents are slices [b0, b0 + n) along dim 0, the per-problem
// inputs' gradients are assembled slice by slice and the weights' gradients summed over the groups. A group holds as
// many whole problems as fit in `group_coordinates` parameter coordinates (at least one problem); 0 runs all B at
// once. The groups depend only on that number and the problem shapes (never on the thread count), the forward and the
// backward's re-run cut the same groups, and the meta-gradients equal the one-group ones up to floating-point
// reassociation (tested at 1e-10 in float64). What this bounds is the network's activations, their gradients and the
// step's full-size temporaries, which exist for one group at a time: for the LSTM at B = 20 on the MNIST MLP (318,200
// coordinates) about 0.5 GB of forward temporaries and 1.2 GB of saved activations and backward temporaries at once,
// a fifth of that in groups of 65,536 coordinates (4 problems): the peak RSS of `hamlet benchmark --mode=meta-train
// --optimizers=lstm --batches=20 --unroll=20 --recompute` went from 3.35 to 1.78 GB (docs/performance.md).
inline constexpr int64_t kRecomputeGroupCoordinates = 65536;
optim::StepResult recomputed_update(learned::LearnedOptimizer& optimizer, const TensorList& params,
                                    const TensorList& grads, const at::Tensor& loss,
                                    const optim::OptimizerState& state,
                                    int64_t group_coordinates = kRecomputeGroupCoordinates);

// optimizer.update(params, grads, loss, state) run in the problem groups above (all at once where they do not apply),
// the groups' new params, state slots, state scalars and diagnostics assembled along dim 0 into full-size tensors;
// the step counter is the update's. For steps whose graph is not wanted (autograd off): recomputed_update's forward,
// and a checkpointed stretch's first run, so that it computes the very values its replay computes.
optim::StepResult update_in_groups(const learned::LearnedOptimizer& optimizer, const TensorList& params,
                                   const TensorList& grads, const at::Tensor& loss, const optim::OptimizerState& state,
                                   int64_t group_coordinates = kRecomputeGroupCoordinates);

// √U checkpointing (issue "steps at model scale"): a stretch of consecutive steps of a window as ONE autograd node
// that keeps only the stretch's inputs (θ at its start, the carried state, the weights φ), not one record per step.
// `body(params, state, replay)` runs the stretch from (params, state) and returns its end (θ, state) and the sum of
// its loss terms (a scalar); checkpointed_segment calls it once under no-grad (replay = false: the body may update
// host-side counters then), keeps the inputs, and when the meta-backward reaches the node calls it again with
// autograd on from fresh leaves of the same values (replay = true: counters must not be touched again, every host
// decision must come out the same) and back-propagates through that local graph. Inside, the body should use
// recomputed_update for each step of the replay (update_in_groups in the first run, which then computes the same
// values), so the replay holds one record per step of one stretch at a time: a window of U steps in stretches of k
// then keeps about U/k + k step records instead of U (k = ⌈√U⌉ gives 2√U).
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
