#include "hamlet/tasks/hamiltonian_loss.hpp"

#include "hamlet/core/error.hpp"

namespace hamlet::tasks {

HamiltonianLossMode parse_hamiltonian_loss_mode(const std::string& name) {
  if (name == "faithful") return HamiltonianLossMode::kFaithful;
  if (name == "l2") return HamiltonianLossMode::kL2;
  throw Error("unknown hamiltonian_loss mode '" + name + "'; valid: faithful, l2");
}

std::string hamiltonian_loss_mode_name(HamiltonianLossMode mode) {
  return mode == HamiltonianLossMode::kFaithful ? "faithful" : "l2";
}

at::Tensor hamiltonian_regulariser(const TensorList& params, HamiltonianLossMode mode, double reg_coeff) {
  HAMLET_CHECK(!params.empty(), "hamiltonian_loss: no parameter tensors");
  if (mode == HamiltonianLossMode::kL2) return (0.5 * reg_coeff) * per_problem_sum_sq(params);
  // The seed sums one unsquared Euclidean norm per tensor; the norm of an all-zero tensor is 0 with an undefined
  // derivative, which the detach below keeps out of the graph anyway.
  at::Tensor total = at::zeros({params.front().size(0)}, params.front().options());
  for (const at::Tensor& p : params) total = total + p.detach().flatten(1).norm(2, 1);
  // Detached: the seed converts the norms to Python floats, so this term never reaches the gradient.
  return reg_coeff * total;
}

at::Tensor hamiltonian_loss(const at::Tensor& logits, const at::Tensor& labels, const TensorList& params,
                            HamiltonianLossMode mode, double reg_coeff) {
  HAMLET_CHECK(logits.dim() == 3 && labels.dim() == 2 && logits.size(0) == labels.size(0) &&
                   logits.size(1) == labels.size(1),
               "hamiltonian_loss: expected logits [B, M, C] and labels [B, M], got ", logits.sizes(), " and ",
               labels.sizes());
  const at::Tensor logp = at::log_softmax(logits, -1);
  const at::Tensor ce = -logp.gather(2, labels.unsqueeze(2)).squeeze(2).mean(1);
  return ce + hamiltonian_regulariser(params, mode, reg_coeff);
}

}  // namespace hamlet::tasks
