#pragma once
// Paper-faithful port-Hamiltonian learned optimizer ("phnn-paper"): the HNN optimizer of "Can we learn
// gradients by Hamiltonian Neural Networks?" (Timofeev, Afonin, Liu, arXiv:2111.00565) as implemented in
// AfoninAndrei/OPT-ML `src/hamiltonian.py` (class Hamiltonian) and `src/meta_optimizer.py` (Optimizer_HNN).
// Reference: docs/methods.md §1.
//
// Per coordinate (one row), with gradient g (treated as given; detached unless second derivatives are on) and
// carried state s (zero at trajectory start), feature width d = 1 (raw) or 2 (preprocessing P, preprocess.hpp):
//
//   q = φ(g), σ = φ(s)                     φ = P (d = 2) or identity (d = 1)
//   G = G_net(q)                           Linear(d→d) → ReLU → Linear(d→d)
//   a = V_net(q)                           Linear(d→d) → ReLU → Linear(d→d); a stands for ∂H/∂q directly
//   M⁻¹ = L_w L_wᵀ                         (mass_factor = LLt, the code) or L_wᵀ L_w (LtL, the paper text)
//   [r_q | r_p] = [a | σ] D_wᵀ             D_w: 2d×2d, no bias, unconstrained
//   q̇ = σ − r_q,   q̈ = (G − a − r_p) M⁻¹
//   u  = [q̇ | q] W_uᵀ                      W_u: 1×2d, no bias
//   s' = [q̇ | q̈] W_sᵀ + b_s                W_s: 1×2d, bias b_s
//   s' ← s' / ‖s'‖ per tensor per problem  (norm = true; an all-zero block stays zero, a 1-element block is ±1)
//   θ ← θ + out_mul · u                    (plus sign: the network learns the direction)
//
// Weights in order (names; shapes for d): G.0.weight [d,d], G.0.bias [d], G.2.weight [d,d], G.2.bias [d],
// V.0.weight, V.0.bias, V.2.weight, V.2.bias (same shapes), D.weight [2d,2d], L.weight [d,d], L.bias [d] (never
// used; present only with keep_unused_L_bias), W_u.weight [1,2d], W_s.weight [1,2d], W_s.bias [1].
// OPT-ML names: gde.g.*, gde.v.*, gde.D.weight, gde.L.*, output.weight (W_u), output1.* (W_s).
// Counts 19 (d = 1) / 55 (d = 2), or 18 / 53 without the unused L bias.
//
// State: slot "s", one scalar per coordinate (same shape as the parameter). Within update() the new s keeps
// its autograd history (the meta-trainer detaches it at truncation boundaries). With preprocessing and
// state_grad = false, P(s) reads values only, so the state carries no meta-gradient into the next step and G, L,
// D_w rows d…2d−1 and W_s never train (docs/methods.md §1.7); state_grad = true uses the differentiable P (an
// ablation). P on the gradient g is always the differentiable form: g is detached in first-order meta-training,
// so that only matters when second derivatives are switched on.
#include <string>
#include <vector>

#include "hamlet/core/option_spec.hpp"
#include "hamlet/learned/learned_optimizer.hpp"
#include "hamlet/learned/phnn_paper_kernel.hpp"

namespace hamlet::learned {

struct PhnnPaperOptions {
  bool preprocess = false;          // P on g and s, d = 2 (MNIST); identity, d = 1 (quadratic)
  double out_mul = 0.001;           // θ ← θ + out_mul·u (docs/methods.md §1.6)
  bool norm = true;                 // per-tensor normalisation of s' (OPT-ML default; the MNIST runs use false)
  bool state_grad = false;          // differentiable P on the state (ablation, §1.9)
  std::string mass_factor = "LLt";  // LLt (code) | LtL (paper text)
  bool keep_unused_L_bias = true;   // count the unused L bias (19/55) or drop it (18/53)
  int64_t seed = 0;                 // weight initialisation: LibTorch default init drawn from make_generator(seed)
  std::string dtype = "float32";    // weight dtype: float32 | float64
  // fused | tensor: a step that nothing differentiates (evaluation) on the CPU runs as one loop over the
  // coordinates (phnn_paper_kernel.hpp) or as the tensor expressions of forward() (the reference, and how results
  // before this option were made; they agree to float32 rounding).
  std::string kernel = "fused";
  std::string weights;              // weight file this optimizer was loaded from (provenance; set by make_learned)

  int64_t dim() const { return preprocess ? 2 : 1; }
  // Options that change the weights' meaning or shapes; they must agree with a loaded weight file.
  HAMLET_OPTIONS(PhnnPaperOptions);
};

class PhnnPaper final : public ConfiguredLearnedOptimizer<PhnnPaperOptions> {
 public:
  explicit PhnnPaper(PhnnPaperOptions options = {});

  optim::OptimizerState init(const TensorList& params) const override;
  optim::StepResult update(const TensorList& params, const TensorList& grads, const at::Tensor& loss,
                           const optim::OptimizerState& state) const override;

  std::string architecture() const override;
  // Same memory-bound regime as phnn on the MNIST MLP.
  int64_t max_batch_coordinates() const override { return 65536; }
  // Coordinatewise; norm normalises per problem and tensor.
  bool updates_problems_independently() const override { return true; }

  // Every intermediate of the forward pass for rows g [R], s [R] (before norm and out_mul), for tests and
  // diagnostics. Shapes [R, d] unless noted.
  struct Forward {
    at::Tensor q, sigma, G, a, inv_mass /* [d,d] */, r_q, r_p, q_dot, q_ddot;
    at::Tensor u, s_next;  // [R]
  };
  Forward forward(const at::Tensor& g, const at::Tensor& s) const;
  // Whether update() runs a step on rows g, s [R] with the fused kernel: `kernel` = fused, float32/float64 CPU
  // tensors, g and s not requiring grad, and either no trainable weight (evaluation) or preprocess with
  // state_grad = false (meta-training through the kernel's autograd node, phnn_paper_fused_step_trainable). The
  // choice depends on trainability, not on grad mode, so --recompute's two passes compute the same values.
  bool uses_fused_kernel(const at::Tensor& g, const at::Tensor& s) const;
  // Whether update() runs the whole evaluation update from the tensors (phnn_paper_fused_update) instead of
  // building rows: `kernel` = fused, no trainable weight, and parameters, gradients and states [B, ...] alike in
  // shape, on the CPU, of the step's dtype (float32/float64), none requiring grad.
  bool uses_fused_update(const TensorList& params, const TensorList& grads, const TensorList& states) const;
  // Nominal flops per coordinate and step (Optimizer::flops_per_coordinate): P on g and s (d = 2), the two ReLU
  // MLPs, D_w, M⁻¹, the two readouts, the update and, with norm, the square, sum and division.
  double flops_per_coordinate() const override;
  // Of those, the activations: P's log of g and of s (with preprocess; the networks are ReLU).
  double activations_per_coordinate() const override;

 private:
  PhnnPaperKernelWeights kernel_weights(const at::TensorOptions& options) const;

  std::size_t g0w_ = 0, v0w_ = 0, dw_ = 0, lw_ = 0, wu_ = 0, wsw_ = 0;  // indices of the first weight of each block
};

}  // namespace hamlet::learned
