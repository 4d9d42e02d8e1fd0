#pragma once
// AdvancedSymplecticOptimizer, "symplectic" (Javihaus/hamiltonian_ai v0.3.0, src/hamiltonian_ai/optimizers.py).
// Per parameter tensor and per problem (sums over one tensor's non-leading dims only):
//
//   m ← β·m + (1−β)·g                        (EMA, no bias correction; m starts at 0)
//   K = ½Σm²,  V = ½Σg²,  H = K + V
//   α = lr / (√H + ε)
//   θ ← θ − α·m
//
// Properties (docs/methods.md §7.2): invariant to g → c·g (c > 0, up to ε); the first step has length
// lr·(1−β)/√(½((1−β)² + 1)) for any nonzero gradient, in every tensor independently; with g = 0 and m ≠ 0 the
// step has length √2·lr along −m. Despite a comment in the original, this is not a Forest–Ruth integrator.
// α stays on the device (no host sync).
//
// Tensors: parameters and gradients [B, ...] (a [B] tensor is one scalar per problem); undefined gradients skip
// their tensor (parameter and m unchanged), as the original skips tensors without a gradient.
// State: slot "p" (m, one tensor per parameter).
// Diagnostics: "energy" [B] = Σ over tensors of H = K + V as defined above (after the m update of this step).
#include "hamlet/core/option_spec.hpp"
#include "hamlet/optim/optimizer.hpp"

namespace hamlet::optim {

struct SymplecticOptions {
  double lr = 1e-2;       // > 0
  double beta = 0.9;      // EMA factor, in [0, 1)
  double epsilon = 1e-8;  // > 0, keeps α finite at m = g = 0
  HAMLET_OPTIONS(SymplecticOptions);
};

HAMLET_HAND_DESIGNED_OPTIMIZER(AdvancedSymplectic, SymplecticOptions);

}  // namespace hamlet::optim
