#pragma once
// Symplectic-Euler momentum, "symplectic-euler": the "Discrete Implementation" of Javihaus/hamiltonian_ai
// (README.md, v0.3.0) for H(θ, m) = ½‖m‖² + L(θ), with an optional friction factor μ (hamlet option):
//
//   m ← μ·m − η·∇L(θ)        (m starts at 0)
//   θ ← θ + η·m              (uses the updated momentum)
//
// The same η (option "lr") appears in both lines. With v = η·m this is heavy-ball SGD with momentum μ and learning
// rate η², so the default μ = 1 (the README form) oscillates on a quadratic with roughly conserved energy instead
// of settling; μ < 1 damps it. The hamiltonian_ai slides print a different (sign-flipped) form; hamlet follows the
// README. docs/methods.md §7.1.
//
// State: slot "p" (the momentum m, one tensor per parameter, same shape).
// Diagnostics (only when update() is given a defined per-problem loss [B], as the evaluator does):
//   "energy" [B] = ½‖m_t‖² + L(θ_t), the Hamiltonian of the incoming state (θ_t, m_t), ‖·‖ global over tensors.
// Parameters must be [B, ...] for the diagnostic; the update itself is elementwise.
#include "hamlet/core/option_spec.hpp"
#include "hamlet/optim/optimizer.hpp"

namespace hamlet::optim {

struct SymplecticEulerOptions {
  double lr = 0.1;        // η, > 0 (equivalent heavy-ball learning rate η² = 0.01)
  double friction = 1.0;  // μ, in (0, 1]; 1 is the README form
  HAMLET_OPTIONS(SymplecticEulerOptions);
};

HAMLET_HAND_DESIGNED_OPTIMIZER(SymplecticEuler, SymplecticEulerOptions);

}  // namespace hamlet::optim
