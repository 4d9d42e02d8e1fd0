#pragma once
// hamiltonian_ai's hamiltonian_loss(outputs, labels, model, reg_coeff = 0.01) (docs/methods.md §7.3), batched over
// problems: mean cross-entropy of the logits plus a parameter-norm term, in one of two modes.
//
//   faithful  CE + λ·Σ_tensors ‖θ_t‖₂   (norms not squared, per tensor, no ½) with the term DETACHED: the seed
//             reads the norms out as host floats, so training sees plain cross-entropy while the logged loss
//             includes the term. The reproduction default.
//   l2        CE + λ·½·Σ‖θ‖²            differentiable, the L2 regularisation the README describes.
//
// Known answer (§7.3): tensors W = [[3, 4]], b = [0] give the term 0.01·(5 + 0) = 0.05, with zero gradient in
// faithful mode.
#include <ATen/ATen.h>

#include <string>

#include "hamlet/core/tensor.hpp"

namespace hamlet::tasks {

enum class HamiltonianLossMode { kFaithful, kL2 };

// "faithful" | "l2" (an error lists both for anything else) and back.
HamiltonianLossMode parse_hamiltonian_loss_mode(const std::string& name);
std::string hamiltonian_loss_mode_name(HamiltonianLossMode mode);

// The parameter term per problem, [B]: params are [B, ...] each (every tensor of the model, biases included).
at::Tensor hamiltonian_regulariser(const TensorList& params, HamiltonianLossMode mode, double reg_coeff);

// logits [B, M, C], labels [B, M] int64 in [0, C): mean cross-entropy over the M rows of each problem plus
// hamiltonian_regulariser, [B].
at::Tensor hamiltonian_loss(const at::Tensor& logits, const at::Tensor& labels, const TensorList& params,
                            HamiltonianLossMode mode, double reg_coeff);

}  // namespace hamlet::tasks
