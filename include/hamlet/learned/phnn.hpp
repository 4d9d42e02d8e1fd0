#pragma once
// Structured port-Hamiltonian learned optimizer ("phnn"): hamlet design, not a published optimizer
// (docs/methods.md §2). It keeps the OPT-ML idea (AfoninAndrei/OPT-ML; arXiv:2111.00565): the gradient is the
// coordinate q of a learned port-Hamiltonian system and the update is a linear readout of (q̇, q). It adds real
// structure with the parametrisations of Symplectic ODE-Net (Zhong, Dey, Chakraborty, ICLR 2020; repository
// Physics-aware-AI/Symplectic-ODENet, `nn_models.py`, class PSD) and Dissipative SymODEN (arXiv:2002.08860):
//
//   H(q, p) = ½ pᵀ M⁻¹(q) p + V(q)                         V: MLP d → w → 1 (tanh), a scalar potential
//   M⁻¹(q) = L_M L_Mᵀ + ε_M I                              L_M: d×d lower-triangular, softplus diagonal
//   D(q)   = L_D L_Dᵀ + ε_D I                              L_D: 2d×2d lower-triangular (diagonal unconstrained,
//                                                          softplus with option d_softplus)
//   G(q) ∈ R^d                                             forcing, MLP d → w → d (tanh)
//   a = ∂H/∂q (autograd, p held fixed),  b = ∂H/∂p = M⁻¹ p
//   [q̇; ṗ] = (J − D) [a; b] + [0; G],  J = [[0, I], [−I, 0]]
//   dH/dt = −∇Hᵀ D ∇H + bᵀ G ≤ bᵀ G   (passivity)
//
// One optimizee step (§2.5), per coordinate: q_t = φ(g_t) (P when preprocess, d = 2; identity, d = 1; P never
// touches p), K substeps of semi-implicit (symplectic) Euler of size h starting from the carried momentum p_t
// (p first, then q with the new p), then u = [q̇_t | q_t] W_uᵀ with q̇_t = mean of the substep velocities
// = (q̂_{t+1} − q_t)/(K h), θ ← θ + out_mul · u, and p_{t+1} is carried (slot "p", [B, ..., d]).
//
// Weights in order: V.0.weight [w,d], V.0.bias [w], V.2.weight [1,w], V.2.bias [1]; G.0.* [w,d],[w], G.2.*
// [d,w],[d]; mass = state: M.0.* [w,d],[w], M.2.* [d(d+1)/2,w],[d(d+1)/2]; mass = constant: M.raw [d(d+1)/2];
// dissipation = state: D.0.* [w,d],[w], D.2.* [d(2d+1),w],[d(2d+1)]; constant: D.raw [d(2d+1)]; W_u.weight [1,2d].
// Nets use the LibTorch default initialisation; constant raw factors are drawn like the output bias of the net
// they replace, U(±1/√w), so both variants start with factors of the same scale. Counts (w = 16, §2.7): 232 / 468
// (state M and D), 104 / 164 (constant). V.2.bias only shifts H by a constant: it is counted but no update depends
// on it, so it never receives a meta-gradient (it only enters the logged energies).
//
// ∂H/∂q inside update() (option `derivatives`):
//   closed-form (default)  ∂V/∂q = W_V1ᵀ [(1 − s²) ⊙ w_V2] with s = tanh(W_V1 q + b_V1), and for mass = state
//                          ∂(½pᵀL Lᵀp)/∂q = W_M1ᵀ [(1 − s_M²) ⊙ (W_M2ᵀ r)], where r = ∂K/∂raw holds p_i y_j
//                          (y = Lᵀp) for the strictly-lower entries and p_i y_i σ(raw_i) for the softplus diagonal.
//                          These are ordinary tensor expressions of q, p and φ: evaluation needs no autograd and a
//                          meta-gradient needs one backward pass, not double backward.
//   autograd               torch::autograd::grad of V and of the kinetic energy (the reference the closed form is
//                          tested against, values and meta-gradients equal at 1e-12 in float64). With grad mode on
//                          and trainable weights the derivatives are built with create_graph; otherwise grad mode is
//                          re-enabled locally for the derivative only and every output is detached.
//
// Inputs (option `inputs`; registry name "phnn-features" for lopt-features, docs/methods.md §11, issue "Learned
// optimizers that can win" §2):
//   gradient (default)     q = φ(g) as above; V, M, D and G are functions of q.
//   lopt-features          the per-coordinate information of mlp-lopt (Metz et al. 2022; mlp_lopt.hpp): its 28
//                          features, each normalised by its RMS over the tensor, with momentum, RMS and Adafactor
//                          accumulators at the hand-set decays (not meta-learned here), and the 11 time features,
//                          z [R, 39]. q = z_0, the normalised gradient (d = 1, preprocess must be false). V and M
//                          stay functions of q alone, so H(q, p) is the same scalar energy; D(q, z) and G(q, z)
//                          read [q | z] (their first layers are [w, d + 39]). For fixed z the system is the
//                          port-Hamiltonian system above: D is PSD, dH/dt = −∇Hᵀ D ∇H + bᵀ G ≤ bᵀ G, and with
//                          D = 0, G = 0 and a constant mass the integrator is symplectic. z changes between
//                          optimizee steps like q does. State adds the accumulator slots "m", "v", "fac".
// Readout (option `readout`):
//   linear (default)       u = [q̇ | q] W_uᵀ, W_u [1, 2d]
//   exp                    [δ, μ] = [q̇ | q] W_uᵀ, W_u [2, 2d], u = δ · exp(exp_mult · μ): mlp-lopt's direction ×
//                          exp(magnitude) output; out_mul plays its step_mult.
//
// Diagnostics per step, [B], summed over the problem's coordinates:
//   H_before          H(q_t, p_t), the energy at the start of the flow (after the reset to the new observation)
//   H_after_flow      H(q̂_{t+1}, p_{t+1}), the energy after the K substeps
//   H_reset_change    H_before of this step − H_after_flow of the previous step: the energy the reset of q to the
//                     new observation added (0 at the first step). The reset of step t is only known at step t+1,
//                     so it is logged one step late, from the state scalar "H_after_flow".
//   dissipated_power  ∇Hᵀ D ∇H at (q_t, p_t)
//   supplied_power    bᵀ G at (q_t, p_t)
#include <functional>
#include <utility>
#include <string>
#include <vector>

#include "hamlet/core/option_spec.hpp"
#include "hamlet/learned/learned_optimizer.hpp"
#include "hamlet/learned/phnn_kernel.hpp"

namespace hamlet::learned {

// ---- Core pieces as free functions (docs/methods.md §2.8: tests use exact matrices) ----
namespace ph {

// Lower-triangular factor from raw entries in SymODEN's PSD layout: raw [..., n(n+1)/2] holds first the n
// diagonal entries, then the strictly-lower entries row-major (1,0), (2,0), (2,1), (3,0), …; returns [..., n, n].
// softplus_diag applies softplus to the diagonal.
at::Tensor cholesky_from_raw(const at::Tensor& raw, int64_t n, bool softplus_diag);
// L Lᵀ + eps I from raw entries (same layout), [..., n, n]: symmetric with eigenvalues ≥ eps.
at::Tensor psd_from_raw(const at::Tensor& raw, int64_t n, bool softplus_diag, double eps);
// Row-wise matrix product x Mᵀ for rows x [R, n] and M [n, n] (shared) or [R, n, n] (per row); for symmetric M
// this is M x per row.
at::Tensor apply_rows(const at::Tensor& m, const at::Tensor& x);

struct Field {
  at::Tensor q_dot, p_dot;  // [R, d]
};
// The port-Hamiltonian vector field (J − D)[a; b] + [0; G] for a = ∂H/∂q, b = ∂H/∂p (rows [R, d]), D [2d, 2d] or
// [R, 2d, 2d] and G [R, d] (undefined = 0): q̇ = b − (D_qq a + D_qp b), ṗ = −a − (D_pq a + D_pp b) + G.
Field vector_field(const at::Tensor& a, const at::Tensor& b, const at::Tensor& dissipation, const at::Tensor& forcing);

// An energy model on a row batch q [R, d]. Callables may return shared matrices ([d, d], [2d, 2d]) or per-row ones
// ([R, d, d], [R, 2d, 2d]); `forcing` may be empty (G = 0). `mass_depends_on_q` tells whether ∂/∂q of the kinetic
// energy must be taken (false for a constant M⁻¹).
//
// Optional closed forms: when `potential_grad` is set the integrator takes ∂V/∂q from it, and when `mass_at` is
// set (needed when mass_depends_on_q) it takes M⁻¹(q) and the q-derivative of the kinetic energy from it, instead
// of autograd. Both must agree with the callables above (tests/learned/test_phnn.cpp checks hamlet's).
struct MassAt {
  at::Tensor inv_mass;  // M⁻¹(q), shared [d, d] or per row [R, d, d]
  // ∂(½ pᵀ M⁻¹(q) p)/∂q at this q for momenta p [R, d], [R, d].
  std::function<at::Tensor(const at::Tensor& p)> kinetic_grad;
};
struct Model {
  std::function<at::Tensor(const at::Tensor&)> potential;    // V(q), [R]
  std::function<at::Tensor(const at::Tensor&)> inv_mass;     // M⁻¹(q)
  std::function<at::Tensor(const at::Tensor&)> dissipation;  // D(q)
  std::function<at::Tensor(const at::Tensor&)> forcing;      // G(q), [R, d]
  bool mass_depends_on_q = true;
  std::function<at::Tensor(const at::Tensor&)> potential_grad;  // ∂V/∂q, [R, d] (optional closed form)
  std::function<MassAt(const at::Tensor&)> mass_at;             // M⁻¹(q) and ∂K/∂q (optional closed form)
  // V(q) and ∂V/∂q from one evaluation of the network (optional closed form; the integrator uses it where it needs
  // both, else potential and potential_grad).
  std::function<std::pair<at::Tensor, at::Tensor>(const at::Tensor&)> potential_and_grad;
  bool closed_form() const { return static_cast<bool>(potential_grad); }
};

// Closed forms for the tanh MLPs hamlet's phnn uses, net(x) = W2 tanh(W1 x + b1) + b2 on rows x [R, d]:
// (every tanh of phnn's networks is fast_tanh, 2σ(2x) − 1: fast_tanh.hpp)
// ∂(w · net(x))/∂x for an output cotangent w [R, out] (or [out], shared), [R, d].
at::Tensor tanh_mlp_input_grad(const at::Tensor& w1, const at::Tensor& b1, const at::Tensor& w2,
                               const at::Tensor& cotangent, const at::Tensor& x);
// ∂(½ pᵀ L Lᵀ p)/∂raw for L = cholesky_from_raw(raw, n, softplus_diag): rows raw [R, n(n+1)/2], p [R, n];
// same layout as raw.
at::Tensor kinetic_grad_raw(const at::Tensor& raw, const at::Tensor& p, int64_t n, bool softplus_diag);

// H(q, p) = ½ pᵀ M⁻¹(q) p + V(q) per row, [R], in the current grad mode.
at::Tensor hamiltonian(const Model& model, const at::Tensor& q, const at::Tensor& p);

struct Gradients {
  at::Tensor a, b;  // ∂H/∂q, ∂H/∂p, [R, d]
};
// ∇H at (q, p) by autograd for a (p held fixed) and b = M⁻¹(q) p. With create_graph the results are differentiable
// functions of q, p and whatever the model's callables capture; otherwise they are detached.
Gradients energy_gradients(const Model& model, const at::Tensor& q, const at::Tensor& p, bool create_graph);

struct Step {
  at::Tensor p_next;            // p after the K substeps, [R, d]
  at::Tensor q_hat;             // q after the K substeps (the predicted next feature), [R, d]
  at::Tensor q_dot;             // (q_hat − q)/(K h) = mean substep velocity; q̇(q, p_next) when K = 1, [R, d]
  at::Tensor energy_before;     // H(q, p), [R], detached
  at::Tensor dissipated_power;  // ∇Hᵀ D ∇H at (q, p), [R], detached
  at::Tensor supplied_power;    // bᵀ G at (q, p), [R], detached
};
// K substeps of semi-implicit Euler: p ← p + h ṗ(q, p), then q ← q + h q̇(q, p) with the new p (docs/methods.md §2.4).
// Symplectic (area preserving for d = 1) when M⁻¹ is constant, D = 0 and G is a gradient field.
Step symplectic_euler(const Model& model, const at::Tensor& q, const at::Tensor& p, double h, int64_t substeps,
                      bool create_graph);

}  // namespace ph

struct PhnnOptions {
  bool preprocess = false;            // P on the gradient (d = 2) or raw gradient (d = 1); never applied to p
  int64_t hidden = 16;                // width w of every net (tanh)
  std::string mass = "state";         // state: M⁻¹(q) from a net | constant: free raw factor
  std::string dissipation = "state";  // state: D(q) from a net | constant: free raw factor
  bool d_softplus = false;            // softplus on the diagonal of L_D (docs/methods.md §2.2 "softplus optional")
  double eps_m = 1e-3;                // ε_M ≥ 0
  double eps_d = 1e-3;                // ε_D ≥ 0
  double h = 0.1;                     // substep size
  int64_t substeps = 1;               // K
  double out_mul = 0.001;             // θ ← θ + out_mul·u
  std::string init_wu = "default";    // default | sgd: W_u = (0, −1) (d = 1, u = −g) or (0, 0, 0, −1) (d = 2)
  std::string derivatives = "closed-form";  // closed-form | autograd: how ∂H/∂q is computed (same values)
  // fused | tensor: on the CPU with closed-form derivatives a step runs as one loop over the coordinates
  // (phnn_kernel.hpp) when nothing differentiates it (evaluation), or as that loop's autograd node with a written-out
  // backward in meta-training with K = 1 and a state dissipation (either mass); otherwise, or with tensor, as
  // the tensor expressions (the reference, and how results before this option were made; they agree to float32
  // rounding).
  std::string kernel = "fused";
  std::string inputs = "gradient";    // gradient | lopt-features (see above); "phnn-features" defaults to the latter
  std::string readout = "linear";     // linear | exp
  double exp_mult = 0.001;            // exp readout: u = δ·exp(exp_mult·μ)
  int64_t seed = 0;                   // weight initialisation
  std::string dtype = "float32";      // weight dtype: float32 | float64
  std::string weights;                // weight file this optimizer was loaded from (provenance)

  int64_t dim() const { return preprocess ? 2 : 1; }
  bool lopt_features() const { return inputs == "lopt-features"; }
  // Width of the context z that D and G read besides q: 39 with lopt-features, else 0.
  int64_t context_dim() const;
  HAMLET_OPTIONS(PhnnOptions);
};

// The defaults of "phnn-features": inputs = lopt-features, readout = exp, mass = constant (a state mass
// occasionally explodes, README), dissipation = state (so that D reads z); everything else as PhnnOptions.
PhnnOptions phnn_features_defaults();

class Phnn final : public ConfiguredLearnedOptimizer<PhnnOptions> {
 public:
  explicit Phnn(PhnnOptions options = {});

  // "phnn", or "phnn-features" when the inputs are lopt-features.
  std::string name() const override { return options_.lopt_features() ? "phnn-features" : "phnn"; }
  optim::OptimizerState init(const TensorList& params) const override;
  optim::StepResult update(const TensorList& params, const TensorList& grads, const at::Tensor& loss,
                           const optim::OptimizerState& state) const override;

  std::string architecture() const override;
  // Measured on the MNIST MLP (tensor path): 135 problem-steps/s with 1-4 problems per chunk, 18/s with 40. With
  // lopt-features one problem per chunk: its feature passes leave the cache past one MNIST problem (fused kernels,
  // idle Xeon: 4 problems per chunk 0.7-0.9x the speed of one at a time).
  int64_t max_batch_coordinates() const override { return options_.lopt_features() ? 16384 : 65536; }
  // Coordinatewise flow; the diagnostics and "H_after_flow" are per-problem sums, the mlp-lopt features (phnn-features)
  // are normalised per problem and tensor.
  bool updates_problems_independently() const override { return true; }

  // The energy model of the current weights, converted to `options` (dtype, device); differentiable with respect
  // to the held weights. `context` [R, context_dim()] is z for D and G (required with lopt-features, else unused).
  ph::Model model(const at::TensorOptions& options, const at::Tensor& context = at::Tensor()) const;
  // The same model with z given as its two blocks, the per-coordinate feature rows [R, 28] and the time features
  // [1, 11] shared by every row (what update() has): z's contribution to the first layers of D and G is computed
  // once per step as rows·W_rowsᵀ + (time·W_timeᵀ + b), so no [R, 39] context is built.
  ph::Model model(const at::TensorOptions& options, const at::Tensor& rows, const at::Tensor& time) const;
  // Whether update() runs a step on features q and momenta p [R, d] with the fused kernel (phnn_kernel.hpp):
  // `kernel` = fused, closed-form derivatives, float32/float64 CPU tensors, and either nothing that will ever be
  // differentiated (neither trainable weights nor q or p requiring grad) or the configuration of the kernel's
  // autograd node (K = 1, dissipation = state, either mass; fused_step_trainable), which meta-training then
  // uses. The choice depends on trainability, not on grad mode, so a step that --recompute re-runs with autograd
  // computes the same values in both passes.
  bool uses_fused_kernel(const at::Tensor& q, const at::Tensor& p) const;
  // Whether update() runs the whole evaluation update from the tensors instead of building rows (ph::fused_update,
  // or ph::fused_features_update with lopt-features): `kernel` = fused, closed-form derivatives, no trainable
  // weight, and parameters, gradients [B, ...] and momenta (state slot "p", [B, ..., d]) that fit, on the CPU, of
  // the step's dtype (float32/float64), none requiring grad; with lopt-features also the slots "m", "v", "fac"
  // and a per-problem rank ≤ 2 (mlp_lopt_update_fused_applies).
  bool uses_fused_update(const TensorList& params, const TensorList& grads, const optim::OptimizerState& state) const;
  // Nominal flops per coordinate and step (Optimizer::flops_per_coordinate, a tanh counted 1), counted in phnn.cpp
  // from d, the width, K, the mass and dissipation variants, the readout and the inputs: 523 for d = 1, w = 16,
  // K = 1 with a constant mass and a state dissipation, 893 with the state mass; phnn-features (its defaults: exp
  // readout, constant mass, state dissipation) 2,410, of which 1,792 are the context layer (28 features × 2w
  // first-layer units, a multiply-add each) and 87 mlp-lopt's features.
  double flops_per_coordinate() const override;
  // Of those, the activations: one tanh per hidden unit of every network evaluation (V, G, D, M per substep, V and
  // M again at q̂), the state mass's softplus and σ, the exp readout and P's log: 64 for d = 1, w = 16, K = 1 with
  // a constant mass and a state dissipation (65 with phnn-features' exp readout), 100 with the state mass.
  double activations_per_coordinate() const override;
  // The input features q = φ(g) for gradient rows g [R], [R, d].
  at::Tensor features(const at::Tensor& g) const;

 private:
  // z's contribution to the first layers of G and D plus their biases, [R, w] each (the second undefined without
  // a D network): rows W_rowsᵀ + time W_timeᵀ + b, one GEMM for both.
  std::pair<at::Tensor, at::Tensor> context_biases(const TensorList& w, const at::TensorOptions& options,
                                                   const at::Tensor& rows, const at::Tensor& time) const;
  // That layer's parts: z's 28 feature columns of G.0 then (state dissipation) D.0, [W, 28] with W = w or 2w, and
  // time W_timeᵀ + b, [1, W].
  std::pair<at::Tensor, at::Tensor> context_layer(const TensorList& w, const at::TensorOptions& options,
                                                  const at::Tensor& time) const;

  // The current weights as the fused kernel reads them, converted to `options`.
  ph::KernelWeights kernel_weights(const at::TensorOptions& options, const at::Tensor& rows,
                                   const at::Tensor& time) const;

  std::size_t v_ = 0, g_ = 0, m_ = 0, d_ = 0, wu_ = 0;  // first weight index of each block
};

}  // namespace hamlet::learned
