#pragma once
// Port-Hamiltonian learned optimizer with a lifted phase space ("phnn-lift"): hamlet design, not a published
// optimizer (docs/methods.md §13). Like SHAPE (Wang, Bajaj, arXiv 2605.06868) it lifts optimisation to a phase
// space in which q is the candidate solution, the momenta are cotangent variables and the gradient is a port input
// u, with a passive structure. It gives hamlet's port-Hamiltonian optimizer (phnn, phnn.hpp) the per-coordinate
// information of the strong learned optimizers: momenta at several timescales and a second moment
// (small_fc_lopt and VeLO, Metz et al. 2022), an Adam-like metric, and a per-tensor RMS-normalised update with
// decoupled weight decay (Celo2, Moudgil et al. 2026, normalises its MLP's update per step by its RMS; Lion, Chen
// et al. 2023, takes a sign step). A bounded (relativistic) kinetic energy is an alternative to clipping.
//
// Per coordinate (one scalar θ of one problem) the state is x = (q, p_1..p_k), q = θ, and
//
//   H(x) = K(p; m)                                        V ≡ 0: the loss is not part of H, its gradient g is the
//                                                         port input u = g
//   m    = √v + eps,  v ← β_v v + (1 − β_v) g²            metric ("mass") from the second moment, updated first
//                                                         (option mass = constant sets m = 1, an ablation);
//                                                         held fixed during a step; no bias correction (it is a
//                                                         per-tensor scale, which the RMS readout removes)
//   K    = Σ_i p_i² / (2m)                                kinetic = quadratic: ∂K/∂p_i = p_i / m (Adam's m/√v)
//   K    = Σ_i c² m (√(1 + (p_i/(c m))²) − 1)             kinetic = relativistic (c = option speed): the same to
//                                                         second order in p, and |∂K/∂p_i| < c (a bounded step)
//   dx/dt = (J(x) − R(x)) ∇H(x) + G(x) u
//   J = [[0, −κᵀ], [κ, 0]]                                skew for any κ ∈ R^k: κ_i = 1/k + a_i(z) couples p_i to q
//   R = diag(0, r_1..r_k),  r_i = ρ_i p_i / (∂K/∂p_i)     = ρ_i m (quadratic), ρ_i m √(1 + (p_i/(cm))²)
//                                                         (relativistic): > 0, so R ⪰ 0, and R∇H = (0, ρ_i p_i)
//   G = [−δ(z)/m ; ρ_1 .. ρ_k]                            the gradient forces each momentum with the gain of its
//                                                         own dissipation; δ(z) is a learned direct term on q
//   ⇒ q̇ = −Σ_i κ_i ∂K/∂p_i − (δ/m) g,   ṗ_i = −ρ_i (p_i − g)       (∂H/∂q = 0)
//   dH/dt = −Σ_i r_i (∂K/∂p_i)² + Σ_i (∂K/∂p_i) ρ_i g = −∇HᵀR∇H + ∇HᵀG u  ≤  ∇HᵀG u   (passivity)
//
// Learned (meta-parameters φ): ρ_i = exp(log_rho_i), the dissipation rates, so β_i = exp(−ρ_i) ∈ (0, 1) for any
// φ, initialised at ρ_i = −ln β_i for the option decays (0.9:0.99:0.999; the log keeps meta-gradients of slow and
// fast timescales on one scale); the net N: z → tanh(W0 z + b0) → W2 · + b2 ∈ R^{k+1} giving a_1..a_k (coupling)
// and δ (direct term), per coordinate with shared weights; the step size α = exp(log_step). Fixed (options): k, the
// metric's decay β_v and eps, the kinetic energy and c, weight decay. W2 and b2 start at zero, so at
// initialisation N = 0: κ_i = 1/k, δ = 0, and the optimizer is the hand-designed mix of the k EMA momenta in the
// Adam metric; meta-training moves from there.
//
// Features z per coordinate, each channel divided by its RMS over the tensor (per problem), x / √(mean x² +
// 1e-16): [g, p'_1/m, .., p'_k/m, g/m] (k + 2), plus with time_features the 11 values tanh(t/s − 1) of mlp-lopt
// (s = 1, 3, 10, .., 1e5, t = updates already applied), z [R, k + 2 (+ 11)].
//
// One optimizee step is one unit of time, integrated by a splitting whose substeps are each exact flows:
//   1. kick      p_i ← p_i + h κ_i ∂V/∂q                      (the conservative force; a no-op here since V ≡ 0,
//                                                             kept so that the integrator is tested with a V)
//   2. ports     p_i ← β_i p_i + (1 − β_i) g,  β_i = e^{−ρ_i h}    (exact flow of ṗ_i = −ρ_i (p_i − g))
//   3. drift     q̇ = −Σ_i κ_i(z) ∂K/∂p_i(p') − (δ(z)/m) g,  q ← q + h q̇   (z read at p'; exact as p' is fixed)
// With R = 0 and G = 0 (ρ = 0, δ = 0) steps 1 and 3 are semi-implicit (symplectic) Euler: its energy error stays
// bounded over many steps. In the optimizer h = 1, so step 2 makes p_i the EMA of g at decay β_i (zero start).
//
// Readout: d = q̇ (h = 1); û = d / √(mean_tensor d² + 1e-16) when normalise_output (per tensor per problem), else
// û = d; θ ← θ + out_mul·(α û − λ θ) with λ = weight_decay (decoupled: not seen by g, v or p).
//
// Weights in order: log_rho [k], N.0.weight [w, F], N.0.bias [w], N.2.weight [k+1, w], N.2.bias [k+1], log_step [1]
// (F = k + 2, + 11 with time_features; w = hidden). N.0.* use the LibTorch default U(±1/√F). Count with the
// defaults (k = 3, w = 8, no time features): 3 + 48 + 36 + 1 = 88.
//
// State: slots "p" [B, S..., k] and "v" [B, S...], zero at the start. Diagnostics per step, [B], summed over the
// problem's coordinates: H_before = K(p_t; m_t+1), H_after = K(p_t+1; m_t+1), dissipated_power ∇HᵀR∇H and
// supplied_power ∇HᵀG u at the start of step 2 (the metric of this step, the momenta carried in).
//
// kernel: "fused" (default) evaluates the update as three loops per tensor and problem (phnn_lift_kernel.hpp) when no
// weight requires grad (evaluation, ES and PES meta-training) and the tensors are CPU float32/float64; "tensor", and
// every differentiated update (BPTT meta-gradients), takes these tensor expressions, the reference.
#include <string>
#include <vector>

#include "hamlet/core/option_spec.hpp"
#include "hamlet/learned/learned_optimizer.hpp"

namespace hamlet::learned {

// ---- The port-Hamiltonian pieces as free functions, on rows (tests use them with exact values) ----
namespace lift {

enum class Kinetic { kQuadratic, kRelativistic };

// K(p; m) per row: p [R, k], m [R] > 0, speed c > 0 (relativistic only); [R].
at::Tensor kinetic_energy(const at::Tensor& p, const at::Tensor& m, Kinetic kinetic, double speed);
// ∂K/∂p, [R, k] (closed form).
at::Tensor kinetic_grad(const at::Tensor& p, const at::Tensor& m, Kinetic kinetic, double speed);
// The diagonal r of R's momentum block, [R, k]: ρ_i p_i / (∂K/∂p_i), i.e. ρ m (quadratic) or ρ m √(1 + (p/(cm))²);
// rho [k] or [R, k].
at::Tensor dissipation(const at::Tensor& p, const at::Tensor& m, const at::Tensor& rho, Kinetic kinetic, double speed);

// J(x), R(x) [R, k+1, k+1] and G(x) [R, k+1] at a state, coordinates ordered (q, p_1..p_k): coupling κ [R, k],
// rho [k] or [R, k], direct term δ [R].
struct Structure {
  at::Tensor J, R, G;
};
Structure structure(const at::Tensor& p, const at::Tensor& m, const at::Tensor& coupling, const at::Tensor& rho,
                    const at::Tensor& direct, Kinetic kinetic, double speed);

// The vector field (J − R)∇H + G u for ∇H = (a, b): a = ∂H/∂q [R], b = ∂H/∂p [R, k], r the dissipation diagonal
// [R, k], u = g [R]: q̇ = −Σ κ_i b_i − (δ/m) g, ṗ_i = κ_i a − r_i b_i + ρ_i g. Returns [R, k+1].
at::Tensor field(const at::Tensor& a, const at::Tensor& b, const at::Tensor& m, const at::Tensor& coupling,
                 const at::Tensor& r, const at::Tensor& rho, const at::Tensor& direct, const at::Tensor& g);

// The substeps of the splitting above, each the exact flow of its part over a time h (shapes [..., k] for
// momenta, [...] per coordinate, so rows [R, k] or per-tensor blocks [B, N, k] alike):
//   ports:    p' = β p + (1 − β) g with β = exp(−ρ h) (rho [k] or [..., k])
//   velocity: q̇ = −Σ_i κ_i ∂K/∂p_i(p) − (δ/m) g (the drift is q' = q + h q̇)
at::Tensor ports(const at::Tensor& p, const at::Tensor& rho, const at::Tensor& g, double h);
at::Tensor velocity(const at::Tensor& p, const at::Tensor& m, const at::Tensor& coupling, const at::Tensor& direct,
                    const at::Tensor& g, Kinetic kinetic, double speed);
// One whole step for a given κ and δ (the optimizer reads them from p' in between ports and velocity; tests pass
// constants): kick with grad_v = ∂V/∂q [...] (undefined: V ≡ 0), ports, velocity. Returns p' and q̇.
struct Step {
  at::Tensor p_next, q_dot;
};
Step step(const at::Tensor& grad_v, const at::Tensor& p, const at::Tensor& m, const at::Tensor& rho,
          const at::Tensor& g, double h, const at::Tensor& coupling, const at::Tensor& direct, Kinetic kinetic,
          double speed);

// "0.9:0.99:0.999" -> {0.9, 0.99, 0.999}, each in (0, 1); `field` names the option in errors.
std::vector<double> parse_decays(const std::string& field, const std::string& text);

}  // namespace lift

struct PhnnLiftOptions {
  int64_t k = 3;                           // number of momenta
  std::string decays = "0.9:0.99:0.999";   // initial β_i (k values), ρ_i = −ln β_i
  double second_moment_decay = 0.999;      // β_v of the metric
  double eps = 1e-8;                       // m = √v + eps
  std::string mass = "second-moment";      // second-moment (m = √v + eps) | constant (m = 1: the ablation without
                                           // the preconditioned mass; v is still tracked)
  std::string kinetic = "quadratic";       // quadratic | relativistic
  double speed = 1.0;                      // c, the bound on |∂K/∂p| (relativistic)
  bool normalise_output = true;            // per-tensor RMS readout
  int64_t hidden = 8;                      // width w of N
  bool time_features = false;              // 11 time features in z
  double weight_decay = 0.0;               // λ, decoupled
  std::string kernel = "fused";            // fused (without autograd, phnn_lift_kernel.hpp) | tensor
  double out_mul = 0.001;                  // θ ← θ + out_mul·(α û − λ θ)
  int64_t seed = 0;                        // weight initialisation
  std::string dtype = "float32";           // weight dtype: float32 | float64
  std::string weights;                     // weight file this optimizer was loaded from (provenance)

  lift::Kinetic kinetic_kind() const;
  // Width of z: k + 2, plus 11 with time features.
  int64_t features() const;
  HAMLET_OPTIONS(PhnnLiftOptions);
};

class PhnnLift final : public ConfiguredLearnedOptimizer<PhnnLiftOptions> {
 public:
  explicit PhnnLift(PhnnLiftOptions options = {});

  optim::OptimizerState init(const TensorList& params) const override;
  optim::StepResult update(const TensorList& params, const TensorList& grads, const at::Tensor& loss,
                           const optim::OptimizerState& state) const override;
  std::string architecture() const override;
  // [coordinates, w] activations per step, as phnn.
  int64_t max_batch_coordinates() const override { return 65536; }
  // The RMS normalisations and the diagnostics reduce within one problem's tensor.
  bool updates_problems_independently() const override { return true; }
  // The fused kernel's nominal arithmetic per coordinate (Newtonian kinetic energy): N's two layers,
  // 2w(k + 2) + 2w(k + 1) + 2w (tanh and bias), 25 per momentum (ports, diagnostics, velocity, energy), the k + 2
  // normalised features and 28 for the metric, the second moment, the readout and θ' (273 at the defaults).
  double flops_per_coordinate() const override;
  // Of those, the activations: N's w tanh.
  double activations_per_coordinate() const override;

  // The current decays β_i = exp(−exp(log_rho_i)) in `opts`, [k] (differentiable).
  at::Tensor decays(const at::TensorOptions& opts) const;
  // N's outputs for features z [R, F]: coupling κ [R, k] = 1/k + a and direct term δ [R], in `opts`.
  std::pair<at::Tensor, at::Tensor> net(const at::Tensor& z, const at::TensorOptions& opts) const;
};

}  // namespace hamlet::learned
