#pragma once
// Hamiltonian-neural-network regression task ("hnn"): Greydanus, Dzamba, Yosinski 2019, "Hamiltonian Neural
// Networks" (NeurIPS; repository greydanus/hamiltonian-nn, `hnn.py`, `experiment-spring`, `experiment-pend`),
// docs/methods.md §8. The optimizee is an MLP x = (q, p) → H_θ(x) whose symplectic gradient is fitted to observed time
// derivatives:
//
//   S_θ(x) = (∂H_θ/∂p, −∂H_θ/∂q),   F(θ) = mean over points and both coordinates of (ẋ_target − S_θ(x))²
//
// i.e. ‖q̇ − ∂H/∂p‖² + ‖ṗ + ∂H/∂q‖² averaged (the reference's `.pow(2).mean()`). ∂H_θ/∂x is written in closed form
// for the tanh MLP (a backward pass through the layers as ordinary tensor expressions), so F and its gradient in θ
// need one autograd backward, batched over problems with no per-problem loop.
//
// Network: 2 → hidden[0] → … → hidden[k−1] → 1, tanh after every hidden layer, output layer without bias (the
// reference has 2 outputs and reads H from the second; one output is the same function). Weights orthogonal
// (gain 1, torch.nn.init.orthogonal_'s QR with the sign of R's diagonal), biases LibTorch's Linear default
// U(±1/√fan_in); drawn per problem from its seed. Default hidden 64:64 (the paper's 200:200 is --task.hidden=200:200;
// 64 keeps an evaluation step a few ms).
//
// Data per problem, drawn from the problem seed (docs/methods.md §8.2): `trajectories` trajectories on t ∈ [0, 3] at
// `points` evenly spaced times (linspace, both ends included), states from the closed form (spring) or RK4 with
// 100 substeps per interval (pendulum); targets ẋ are the exact field at the clean states, then N(0, noise²) is
// added to q and p. The reference trains on the first half of 50 trajectories: 25 is the default here.
//   spring    H = q² + p²,             ẋ = (2p, −2q),      start: uniform direction, radius ~ U[0.1, 1.0)
//   pendulum  H = 3(1 − cos q) + p²,   ẋ = (2p, −3 sin q), start: uniform direction, radius ~ U[1.3, 2.3)
// Known answers (§8.5): spring S(0.3, −0.4) = (−0.8, −0.6); pendulum S(π/2, 1) = (2, −3).
//
// Batched: parameters per layer l "w<l>" [B, out, in] and "b<l>" [B, out] (no "b<k>" for the output layer); data
// x, ẋ [B, N, 2]. The task is deterministic (full batch): loss ignores the step.
//
// Options: system (spring | pendulum), hidden ("64:64"), trajectories (25), points (0 = the system's default: 30
// spring, 45 pendulum), noise (0.1), dtype (float32 | float64).
#include <memory>

#include "hamlet/core/option_spec.hpp"
#include "hamlet/tasks/task.hpp"

namespace hamlet::tasks {

struct HnnOptions {
  std::string system = "spring";
  std::vector<int64_t> hidden{64, 64};
  int64_t trajectories = 25;
  int64_t points = 0;
  double noise = 0.1;
  std::string dtype = "float32";
  int64_t resolved_points() const;
  HAMLET_OPTIONS(HnnOptions);
};

// The true field ẋ = (∂H/∂p, −∂H/∂q) of `system` at states x [..., 2] (q, p).
at::Tensor hnn_true_field(const std::string& system, const at::Tensor& x);
// Trajectories of `system` from starts x0 [M, 2] at times t [T]: [M, T, 2] (closed form or RK4).
at::Tensor hnn_trajectories(const std::string& system, const at::Tensor& x0, const at::Tensor& t);
// Mean over points and coordinates of (target − field)², per problem: field, target [B, N, 2] -> [B].
at::Tensor hnn_field_loss(const at::Tensor& field, const at::Tensor& target);

class HnnBatch final : public ProblemBatch {
 public:
  // x, x_dot: [B, N, 2]; params0: w0, b0, ..., w_k (see above).
  HnnBatch(at::Tensor x, at::Tensor x_dot, TensorList params0);
  int64_t size() const override { return x_.size(0); }
  TensorList initial_params() const override { return params0_; }
  at::Tensor loss(const TensorList& params, int64_t step) const override;
  std::vector<std::string> param_names() const override;
  // H_θ at x [B, N, 2]: [B, N].
  at::Tensor hamiltonian(const TensorList& params, const at::Tensor& x) const;
  // ∂H_θ/∂x at x [B, N, 2] in closed form: [B, N, 2].
  at::Tensor input_grad(const TensorList& params, const at::Tensor& x) const;
  const at::Tensor& x() const { return x_; }
  const at::Tensor& x_dot() const { return x_dot_; }

 private:
  at::Tensor x_, x_dot_;
  TensorList params0_;
};

class HnnTask final : public Task {
 public:
  explicit HnnTask(HnnOptions options = {});
  std::string name() const override { return "hnn"; }
  OptionMap options() const override { return options_.to_map(); }
  std::unique_ptr<ProblemBatch> sample(Split split, uint64_t seed, int64_t first, int64_t count,
                                       c10::Device device) const override;
  // Parameters per problem (4,416 for the default 2-64-64-1).
  int64_t num_params() const;

 private:
  HnnOptions options_;
};

}  // namespace hamlet::tasks
