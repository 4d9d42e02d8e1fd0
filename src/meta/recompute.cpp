#include "hamlet/meta/recompute.hpp"

#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/custom_function.h>

#include <algorithm>

#include "hamlet/core/error.hpp"

namespace hamlet::meta {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Where an OptimizerState's tensors sit in a flat list: its slots, then its defined scalars, in map order.
struct StateLayout {
  std::vector<std::pair<std::string, std::size_t>> slots;  // name, tensors in the list
  std::vector<std::string> scalars;
};

// Appends the state's tensors to `out`; returns where they went.
StateLayout flatten_state(const optim::OptimizerState& state, variable_list& out) {
  StateLayout where;
  for (const auto& [name, list] : state.slots) {
    out.insert(out.end(), list.begin(), list.end());
    where.slots.emplace_back(name, list.size());
  }
  for (const auto& [name, value] : state.scalars) {
    if (!value.defined()) continue;
    out.push_back(value);
    where.scalars.push_back(name);
  }
  return where;
}

// Reads `count` tensors from `in` starting at `i` (advanced past them).
TensorList take(const variable_list& in, std::size_t& i, std::size_t count) {
  TensorList out(in.begin() + static_cast<std::ptrdiff_t>(i), in.begin() + static_cast<std::ptrdiff_t>(i + count));
  i += count;
  return out;
}

// Inverse of flatten_state, reading from position `i` (advanced past the state's tensors).
optim::OptimizerState unflatten_state(const variable_list& in, std::size_t& i, const StateLayout& where,
                                      int64_t step) {
  optim::OptimizerState state;
  state.step = step;
  for (const auto& [name, n] : where.slots) state.slots[name] = take(in, i, n);
  for (const auto& name : where.scalars) state.scalars[name] = in[i++];
  return state;
}

// How the flat tensor lists of the autograd node map onto (params, grads, state, weights) and back onto a
// StepResult. Held by the node until its backward has run, so it must not point into the caller's stack.
struct StepLayout : torch::CustomClassHolder {
  learned::LearnedOptimizer* optimizer = nullptr;
  std::size_t n_params = 0, n_grads = 0, n_weights = 0;
  StateLayout in_state, out_state;
  int64_t step = 0;
  at::Tensor loss;
  std::vector<bool> needs_grad;  // per input: whether the caller's tensor required grad
  int64_t group_coordinates = 0;
  // Filled by the forward pass for the caller.
  int64_t out_step = 0;
  std::map<std::string, at::Tensor> diagnostics;
};

struct Unpacked {
  TensorList params, grads, weights;
  optim::OptimizerState state;
};

// Inputs are laid out as params, grads, state, weights.
Unpacked unpack(const variable_list& in, const StepLayout& l) {
  Unpacked u;
  std::size_t i = 0;
  u.params = take(in, i, l.n_params);
  u.grads = take(in, i, l.n_grads);
  u.state = unflatten_state(in, i, l.in_state, l.step);
  u.weights = take(in, i, l.n_weights);
  return u;
}

// The differentiable outputs of a step, flat: new params, then the state; returns where the state went.
StateLayout pack_outputs(const optim::StepResult& r, variable_list& out) {
  out.assign(r.params.begin(), r.params.end());
  return flatten_state(r.state, out);
}

// Fresh leaves of the saved inputs, requiring grad where the caller's tensors did.
variable_list fresh_leaves_of(const variable_list& saved, const std::vector<bool>& needs_grad) {
  variable_list leaves;
  leaves.reserve(saved.size());
  for (std::size_t i = 0; i < saved.size(); ++i) {
    leaves.push_back(needs_grad[i] ? saved[i].detach().requires_grad_(true) : saved[i].detach());
  }
  return leaves;
}

// The backward of a node that re-ran its computation from `leaves` into `outputs`: back-propagates the cotangents
// of the outputs that have one into the leaves that need one; one gradient per leaf, plus an undefined one for the
// node's non-tensor argument. `what` names the node in the error when the re-run returned another number of tensors.
variable_list backpropagate_rerun(const char* what, const variable_list& outputs, const variable_list& grad_outputs,
                                  const variable_list& leaves, const std::vector<bool>& needs_grad) {
  HAMLET_CHECK(outputs.size() == grad_outputs.size(), what, ": the re-run returned ", outputs.size(),
               " tensors, the first run ", grad_outputs.size());
  variable_list roots, seeds, targets;
  std::vector<std::size_t> target_index;
  for (std::size_t i = 0; i < outputs.size(); ++i) {
    if (grad_outputs[i].defined() && outputs[i].requires_grad()) {
      roots.push_back(outputs[i]);
      seeds.push_back(grad_outputs[i]);
    }
  }
  for (std::size_t i = 0; i < leaves.size(); ++i) {
    if (needs_grad[i]) {
      targets.push_back(leaves[i]);
      target_index.push_back(i);
    }
  }
  variable_list result(leaves.size() + 1);
  if (roots.empty() || targets.empty()) return result;
  const variable_list grads = torch::autograd::grad(roots, targets, seeds, /*retain_graph=*/false,
                                                    /*create_graph=*/false, /*allow_unused=*/true);
  for (std::size_t k = 0; k < grads.size(); ++k) result[target_index[k]] = grads[k];
  return result;
}

// Problems per group, 0 meaning all B at once: as many whole problems as fit in group_coordinates parameter
// coordinates (at least one) when the optimizer updates problems independently, every per-problem tensor
// (`problem_tensors`, the params first, `n_params` of them; the loss; the cotangents) has them along dim 0 and one
// group cannot hold them all; 0 otherwise.
int64_t problems_per_group(const learned::LearnedOptimizer& optimizer, int64_t group_coordinates,
                           const variable_list& problem_tensors, std::size_t n_params, const at::Tensor& loss,
                           const variable_list& cotangents) {
  if (group_coordinates <= 0 || !optimizer.updates_problems_independently() || n_params == 0 ||
      problem_tensors.front().dim() < 1) {
    return 0;
  }
  const int64_t batch = problem_tensors.front().size(0);
  const auto leading_batch = [batch](const at::Tensor& x) {
    return !x.defined() || (x.dim() >= 1 && x.size(0) == batch);
  };
  if (!std::all_of(problem_tensors.begin(), problem_tensors.end(), leading_batch) || !leading_batch(loss) ||
      !std::all_of(cotangents.begin(), cotangents.end(), leading_batch)) {
    return 0;
  }
  int64_t per_problem = 0;
  for (std::size_t i = 0; i < n_params; ++i) per_problem += problem_tensors[i].numel() / std::max<int64_t>(batch, 1);
  const int64_t per_group = std::max<int64_t>(1, group_coordinates / std::max<int64_t>(per_problem, 1));
  return per_group >= batch ? 0 : per_group;
}

// Re-runs the step for problems [begin, begin + count) (count 0: all of them) from fresh leaves of the saved inputs
// (the weights whole) and back-propagates the matching slices of the cotangents; one gradient per input as from
// backpropagate_rerun.
variable_list rerun_and_backpropagate(const StepLayout& l, const variable_list& saved,
                                      const variable_list& grad_outputs, int64_t begin, int64_t count) {
  const bool whole = count == 0;
  const std::size_t n_problem_inputs = saved.size() - l.n_weights;
  variable_list inputs = saved, seeds = grad_outputs;
  if (!whole) {
    for (std::size_t i = 0; i < n_problem_inputs; ++i) inputs[i] = saved[i].detach().narrow(0, begin, count);
    for (auto& g : seeds) {
      if (g.defined()) g = g.narrow(0, begin, count);
    }
  }
  const at::Tensor loss = whole || !l.loss.defined() ? l.loss : l.loss.narrow(0, begin, count);
  const variable_list leaves = fresh_leaves_of(inputs, l.needs_grad);
  const Unpacked u = unpack(leaves, l);
  variable_list outputs;
  {
    learned::WeightSwap swap(*l.optimizer, u.weights);
    pack_outputs(l.optimizer->update(u.params, u.grads, loss, u.state), outputs);
  }
  return backpropagate_rerun("recomputed step", outputs, seeds, leaves, l.needs_grad);
}

struct RecomputedStep : torch::autograd::Function<RecomputedStep> {
  // `inputs` arrives as an ArrayRef: Function::apply only registers tensors passed as Tensor or TensorList as
  // inputs of the node (a std::vector argument would silently cut the graph).
  static variable_list forward(AutogradContext* ctx, at::TensorList input_refs,
                               c10::intrusive_ptr<StepLayout> layout) {
    // Autograd is off here, so the optimizer's network records nothing; only the inputs are kept.
    const variable_list inputs = input_refs.vec();
    const Unpacked u = unpack(inputs, *layout);
    optim::StepResult r =
        update_in_groups(*layout->optimizer, u.params, u.grads, layout->loss, u.state, layout->group_coordinates);
    layout->out_step = r.state.step;
    for (const auto& [name, value] : r.diagnostics) layout->diagnostics[name] = value.detach();
    ctx->save_for_backward(inputs);
    ctx->saved_data["layout"] = c10::IValue::make_capsule(layout);
    // Outputs the loss does not reach get no cotangent rather than zeros, so the re-run back-propagates only what
    // matters (without this a window's last state would be back-propagated with zero seeds).
    ctx->set_materialize_grads(false);
    variable_list outputs;
    layout->out_state = pack_outputs(r, outputs);
    return outputs;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const auto layout = c10::static_intrusive_pointer_cast<StepLayout>(ctx->saved_data["layout"].toCapsule());
    at::AutoGradMode enable(true);
    const variable_list saved = ctx->get_saved_variables();
    const std::size_t n_problem_inputs = saved.size() - layout->n_weights;
    const int64_t per_group = problems_per_group(
        *layout->optimizer, layout->group_coordinates,
        variable_list(saved.begin(), saved.begin() + static_cast<std::ptrdiff_t>(n_problem_inputs)),
        layout->n_params, layout->loss, grad_outputs);
    if (per_group == 0) return rerun_and_backpropagate(*layout, saved, grad_outputs, 0, 0);
    const int64_t batch = saved.front().size(0);
    // The problems are independent, so the step's re-run and its backward (the network's saved activations and
    // their gradients, about 1.2 GB for the LSTM at B = 20 on the MNIST MLP) need only exist for a few problems at
    // a time: per-problem inputs get their gradients slice by slice, the weights the sum over the groups.
    variable_list result(saved.size() + 1);
    for (int64_t begin = 0; begin < batch; begin += per_group) {
      const int64_t count = std::min(per_group, batch - begin);
      variable_list part = rerun_and_backpropagate(*layout, saved, grad_outputs, begin, count);
      for (std::size_t i = 0; i < saved.size(); ++i) {
        if (!part[i].defined()) continue;
        if (i < n_problem_inputs) {
          if (!result[i].defined()) result[i] = at::zeros_like(saved[i]);
          result[i].narrow(0, begin, count).copy_(part[i]);
        } else {
          result[i] = result[i].defined() ? result[i] + part[i] : part[i];
        }
      }
    }
    return result;
  }
};

// How the segment node's flat lists map onto (params, state, weights) and its outputs onto (params, state, loss).
struct SegmentLayout : torch::CustomClassHolder {
  learned::LearnedOptimizer* optimizer = nullptr;
  const SegmentBody* body = nullptr;
  std::size_t n_params = 0, n_weights = 0;
  StateLayout in_state, out_state;
  int64_t step = 0, out_step = 0;
  std::vector<bool> needs_grad;
};

// The differentiable outputs of a segment, flat: params, the state, then the loss.
StateLayout pack_segment(const SegmentResult& r, variable_list& out) {
  out.assign(r.params.begin(), r.params.end());
  StateLayout where = flatten_state(r.state, out);
  out.push_back(r.loss);
  return where;
}

struct CheckpointedSegment : torch::autograd::Function<CheckpointedSegment> {
  static variable_list forward(AutogradContext* ctx, at::TensorList input_refs,
                               c10::intrusive_ptr<SegmentLayout> layout) {
    const variable_list inputs = input_refs.vec();
    std::size_t i = 0;
    const TensorList params = take(inputs, i, layout->n_params);
    const optim::OptimizerState state = unflatten_state(inputs, i, layout->in_state, layout->step);
    SegmentResult r = (*layout->body)(params, state, /*replay=*/false);
    layout->out_step = r.state.step;
    ctx->save_for_backward(inputs);
    ctx->saved_data["layout"] = c10::IValue::make_capsule(layout);
    ctx->set_materialize_grads(false);  // as RecomputedStep
    variable_list outputs;
    layout->out_state = pack_segment(r, outputs);
    return outputs;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const auto layout = c10::static_intrusive_pointer_cast<SegmentLayout>(ctx->saved_data["layout"].toCapsule());
    at::AutoGradMode enable(true);
    const variable_list leaves = fresh_leaves_of(ctx->get_saved_variables(), layout->needs_grad);
    std::size_t i = 0;
    const TensorList params = take(leaves, i, layout->n_params);
    const optim::OptimizerState state = unflatten_state(leaves, i, layout->in_state, layout->step);
    const TensorList weights = take(leaves, i, layout->n_weights);
    // The weights stay swapped for the backward too: the replay's per-step nodes re-run their steps with them.
    learned::WeightSwap swap(*layout->optimizer, weights);
    variable_list outputs;
    pack_segment((*layout->body)(params, state, /*replay=*/true), outputs);
    return backpropagate_rerun("checkpointed segment", outputs, grad_outputs, leaves, layout->needs_grad);
  }
};

}  // namespace

SegmentResult checkpointed_segment(learned::LearnedOptimizer& optimizer, const TensorList& params,
                                   const optim::OptimizerState& state, const SegmentBody& body) {
  auto layout = c10::make_intrusive<SegmentLayout>();
  layout->optimizer = &optimizer;
  layout->body = &body;
  layout->n_params = params.size();
  layout->step = state.step;
  variable_list inputs(params.begin(), params.end());
  layout->in_state = flatten_state(state, inputs);
  const TensorList weights = optimizer.weights();
  layout->n_weights = weights.size();
  inputs.insert(inputs.end(), weights.begin(), weights.end());
  for (const auto& x : inputs) layout->needs_grad.push_back(x.requires_grad());
  // Function::apply runs forward() with autograd off, so the first run records nothing but the node itself.
  const variable_list outputs = CheckpointedSegment::apply(at::TensorList(inputs), layout);
  SegmentResult r;
  std::size_t i = 0;
  r.params = take(outputs, i, params.size());
  r.state = unflatten_state(outputs, i, layout->out_state, layout->out_step);
  r.loss = outputs[i];
  return r;
}

optim::StepResult update_in_groups(const learned::LearnedOptimizer& optimizer, const TensorList& params,
                                   const TensorList& grads, const at::Tensor& loss, const optim::OptimizerState& state,
                                   int64_t group_coordinates) {
  variable_list inputs(params.begin(), params.end());
  inputs.insert(inputs.end(), grads.begin(), grads.end());
  const StateLayout in_state = flatten_state(state, inputs);
  const int64_t per_group = problems_per_group(optimizer, group_coordinates, inputs, params.size(), loss, {});
  if (per_group == 0) return optimizer.update(params, grads, loss, state);
  const int64_t batch = params.front().size(0);
  // Each group's results go straight into full-size outputs, so only one group's temporaries (the network's
  // activations over its rows) exist at a time besides them.
  variable_list assembled;
  StateLayout out_state;
  int64_t out_step = 0;
  std::map<std::string, TensorList> diagnostics;
  for (int64_t begin = 0; begin < batch; begin += per_group) {
    const int64_t count = std::min(per_group, batch - begin);
    variable_list slices;
    for (const auto& x : inputs) slices.push_back(x.defined() ? x.narrow(0, begin, count) : x);
    std::size_t i = 0;
    const TensorList p = take(slices, i, params.size());
    const TensorList g = take(slices, i, grads.size());
    const optim::OptimizerState s = unflatten_state(slices, i, in_state, state.step);
    optim::StepResult r = optimizer.update(p, g, loss.defined() ? loss.narrow(0, begin, count) : loss, s);
    variable_list flat;
    const StateLayout where = pack_outputs(r, flat);
    for (const auto& x : flat) {
      HAMLET_CHECK(x.dim() >= 1 && x.size(0) == count, optimizer.name(),
                   " states that it updates problems independently, but a result of shape ", x.sizes(),
                   " does not hold its ", count, " problems along dim 0");
    }
    if (begin == 0) {
      out_state = where;
      out_step = r.state.step;
      for (const auto& x : flat) {
        std::vector<int64_t> shape(x.sizes().begin(), x.sizes().end());
        shape[0] = batch;
        assembled.push_back(at::empty(shape, x.options()));
      }
    }
    HAMLET_CHECK(flat.size() == assembled.size() && where.slots == out_state.slots &&
                     where.scalars == out_state.scalars,
                 optimizer.name(), ": problems ", begin, "..", begin + count - 1,
                 " gave another state layout than the first group");
    for (std::size_t k = 0; k < flat.size(); ++k) {
      at::Tensor dest = assembled[k].narrow(0, begin, count);
      HAMLET_CHECK(dest.sizes() == flat[k].sizes() && dest.scalar_type() == flat[k].scalar_type(), optimizer.name(),
                   ": problems ", begin, "..", begin + count - 1, " gave a result of shape ", flat[k].sizes(),
                   " where the first group's was ", assembled[k].sizes(), " for all problems");
      dest.copy_(flat[k]);
    }
    for (const auto& [name, value] : r.diagnostics) diagnostics[name].push_back(value);
  }
  optim::StepResult out;
  std::size_t i = 0;
  out.params = take(assembled, i, params.size());
  out.state = unflatten_state(assembled, i, out_state, out_step);
  const auto groups = static_cast<std::size_t>((batch + per_group - 1) / per_group);
  for (const auto& [name, parts] : diagnostics) {
    if (parts.size() == groups) out.diagnostics[name] = at::cat(parts);
  }
  return out;
}

optim::StepResult recomputed_update(learned::LearnedOptimizer& optimizer, const TensorList& params,
                                    const TensorList& grads, const at::Tensor& loss,
                                    const optim::OptimizerState& state, int64_t group_coordinates) {
  auto layout = c10::make_intrusive<StepLayout>();
  layout->optimizer = &optimizer;
  layout->group_coordinates = group_coordinates;
  layout->n_params = params.size();
  layout->n_grads = grads.size();
  layout->step = state.step;
  layout->loss = loss.defined() ? loss.detach() : loss;
  variable_list inputs(params.begin(), params.end());
  inputs.insert(inputs.end(), grads.begin(), grads.end());
  layout->in_state = flatten_state(state, inputs);
  const TensorList weights = optimizer.weights();
  layout->n_weights = weights.size();
  inputs.insert(inputs.end(), weights.begin(), weights.end());
  for (const auto& x : inputs) layout->needs_grad.push_back(x.requires_grad());

  const variable_list outputs = RecomputedStep::apply(at::TensorList(inputs), layout);
  optim::StepResult r;
  std::size_t i = 0;
  r.params = take(outputs, i, params.size());
  r.state = unflatten_state(outputs, i, layout->out_state, layout->out_step);
  r.diagnostics = std::move(layout->diagnostics);
  layout->diagnostics.clear();
  return r;
}

}  // namespace hamlet::meta
