#include "common.hpp"

#include <ATen/core/grad_mode.h>

#include "fused.hpp"

#include "hamlet/core/error.hpp"

namespace hamlet::optim::detail {

void check_update_args(const std::string& owner, const TensorList& params, const TensorList& grads) {
  HAMLET_CHECK(!params.empty(), owner, ": update() needs at least one parameter tensor");
  HAMLET_CHECK(params.size() == grads.size(), owner, ": ", params.size(), " parameter tensors but ", grads.size(),
               " gradients");
  for (std::size_t i = 0; i < params.size(); ++i) {
    HAMLET_CHECK(params[i].defined(), owner, ": parameter ", i, " is undefined");
    if (!grads[i].defined()) continue;
    HAMLET_CHECK(grads[i].sizes() == params[i].sizes(), owner, ": gradient ", i, " has shape ", grads[i].sizes(),
                 ", parameter has ", params[i].sizes());
  }
}

const TensorList& slot(const std::string& owner, const OptimizerState& state, const std::string& name,
                       std::size_t count) {
  const auto it = state.slots.find(name);
  HAMLET_CHECK(it != state.slots.end(), owner, ": optimizer state has no slot '", name,
               "' (was it created by this optimizer's init()?)");
  HAMLET_CHECK(it->second.size() == count, owner, ": state slot '", name, "' holds ", it->second.size(),
               " tensors for ", count, " parameters");
  return it->second;
}

const at::Tensor& scalar(const std::string& owner, const OptimizerState& state, const std::string& name) {
  const auto it = state.scalars.find(name);
  HAMLET_CHECK(it != state.scalars.end() && it->second.defined(), owner, ": optimizer state has no scalar '", name,
               "' (was it created by this optimizer's init()?)");
  return it->second;
}

TensorList zeros_like_all(const TensorList& xs) {
  TensorList out;
  out.reserve(xs.size());
  for (const auto& x : xs) out.push_back(at::zeros_like(x, at::MemoryFormat::Contiguous));
  return out;
}

at::Tensor sum_sq_where_defined(const TensorList& xs, const TensorList& grads, const at::Tensor& like) {
  at::Tensor total;
  for (std::size_t i = 0; i < xs.size(); ++i) {
    if (!grads[i].defined()) continue;
    const at::Tensor s = per_problem_sum_sq(xs[i]);
    total = total.defined() ? total + s : s;
  }
  return total.defined() ? total : at::zeros_like(like);
}

int64_t batch_size(const std::string& owner, const TensorList& params) {
  HAMLET_CHECK(!params.empty() && params[0].dim() >= 1, owner,
               ": parameters need a leading problem dimension [B, ...]");
  return params[0].size(0);
}

StepResult per_parameter_update(const std::string& owner, const TensorList& params, const TensorList& grads,
                                const OptimizerState& state, const std::vector<std::string>& slots,
                                const ParamStep& step) {
  check_update_args(owner, params, grads);
  std::vector<const TensorList*> current;
  for (const auto& name : slots) current.push_back(&slot(owner, state, name, params.size()));
  StepResult r;
  r.state = state;
  std::vector<TensorList> next(slots.size());
  TensorList buffers(slots.size());
  for (std::size_t i = 0; i < params.size(); ++i) {
    for (std::size_t k = 0; k < slots.size(); ++k) buffers[k] = (*current[k])[i];
    r.params.push_back(grads[i].defined() ? step(i, params[i], grads[i], buffers) : params[i]);
    for (std::size_t k = 0; k < slots.size(); ++k) next[k].push_back(buffers[k]);
  }
  for (std::size_t k = 0; k < slots.size(); ++k) r.state.slots[slots[k]] = std::move(next[k]);
  ++r.state.step;
  return r;
}

OptimizerState zero_slots(const TensorList& params, const std::vector<std::string>& slots) {
  OptimizerState s;
  for (const auto& name : slots) s.slots[name] = zeros_like_all(params);
  return s;
}

bool fused_applies(const at::Tensor& param, const at::Tensor& grad, const TensorList& buffers) {
  const at::ScalarType dtype = param.scalar_type();
  if (dtype != at::kFloat && dtype != at::kDouble) return false;
  const bool grad_mode = at::GradMode::is_enabled();
  const auto plain = [&](const at::Tensor& x) {
    return x.defined() && x.device().is_cpu() && x.scalar_type() == dtype && x.sizes() == param.sizes() &&
           !(grad_mode && x.requires_grad());
  };
  if (!plain(param) || !plain(grad)) return false;
  for (const auto& b : buffers) {
    if (!plain(b)) return false;
  }
  return true;
}

}  // namespace hamlet::optim::detail
