#pragma once
// Tabular classification task ("tabular"): the hamiltonian_ai setting (docs/methods.md §7.2–7.4) on the Wisconsin
// breast-cancer table (hamlet/data/breast_cancer.hpp: 569 rows, 30 features, 212 malignant / 357 benign).
//
// Data (hamlet/data/prepare_tabular.hpp, the seed's prepare_data): a split seeded by `split_seed` (42, the seed's
// random_state) into training and test rows (test_size 0.2: 455 / 114), standardisation fitted on the training
// rows, SMOTE with k = `smote_k` (5) on the training rows only. Every problem of every split trains on these same
// prepared training rows; the 114 test rows are never trained on and serve test_metrics().
//
// Problem pools: problem i of (split, seed) differs from the others in its initialisation, its minibatch order and
// its dropout masks, all drawn from problem_seed(split, seed, i); the train / validation / test pools are disjoint
// in those seeds, not in data rows (with 569 rows, cutting the rows three ways would leave ~100 per pool).
//
// Model: HamiltonianNN (§7.4), an MLP 30 → hidden[0] → … → hidden[k−1] → 2 with, after every hidden Linear layer,
// the activation (LeakyReLU slope 0.01, or ReLU) and then inverted dropout (keep with probability 1 − dropout,
// kept units scaled by 1/(1 − dropout)); the last layer is linear with 2 logits. Default hidden 64:32 and dropout
// 0.2, the README's usage example (the class default is 512:256). Initialisation: LibTorch's Linear default,
// U(±1/√fan_in) for weights and biases, drawn in float64 per problem.
//
// Loss: hamiltonian_loss (hamlet/tasks/hamiltonian_loss.hpp) on a minibatch of `batch_size` (32, the README's
// DataLoader) training rows, mode `loss` = faithful (CE + detached λΣ‖θ_t‖₂, the default) | l2 (CE + λ½Σ‖θ‖²),
// λ = `reg_coeff` (0.01). batch_size 0 means the whole training part every step. Minibatches: each problem visits
// the training rows without replacement in a fresh seeded order per pass; a pass's leftover that does not fill a
// batch is dropped (the seed's DataLoader keeps it as a short batch). Dropout masks: drawn per problem and step
// from that problem's seed and the step, so loss(θ, t) is a pure function of (θ, t) and problem i's masks do not
// depend on the batch it is in.
//
// Batched: parameters per layer l "w<l>" [B, out, in] and "b<l>" [B, out]; the forward pass is one baddbmm per
// layer.
#include <memory>
#include <vector>

#include "hamlet/core/option_spec.hpp"
#include "hamlet/data/prepare_tabular.hpp"
#include "hamlet/tasks/classification_metrics.hpp"
#include "hamlet/tasks/hamiltonian_loss.hpp"
#include "hamlet/tasks/task.hpp"

namespace hamlet::tasks {

struct TabularOptions {
  std::string dataset = "breast_cancer";
  std::string data_dir;  // empty: <data root>/breast_cancer
  std::vector<int64_t> hidden{64, 32};
  std::string activation = "leaky_relu";
  double dropout = 0.2;
  int64_t batch_size = 32;
  std::string loss = "faithful";
  double reg_coeff = 0.01;
  double test_size = 0.2;
  int64_t split_seed = 42;
  bool smote = true;
  int64_t smote_k = 5;
  std::string dtype = "float32";
  HAMLET_OPTIONS(TabularOptions);
};

class TabularBatch final : public ProblemBatch {
 public:
  // train_x [N, D] / train_y [N] (on the target device and dtype), test_x / test_y likewise; params0 the initial
  // parameters; problem_seeds one per problem (minibatch orders and dropout masks derive from them).
  TabularBatch(at::Tensor train_x, at::Tensor train_y, at::Tensor test_x, at::Tensor test_y, TensorList params0,
               std::vector<uint64_t> problem_seeds, const TabularOptions& options);
  int64_t size() const override { return static_cast<int64_t>(problem_seeds_.size()); }
  TensorList initial_params() const override { return params0_; }
  at::Tensor loss(const TensorList& params, int64_t step) const override;
  std::vector<std::string> param_names() const override;

  // Training-row indices of minibatch `step` for every problem, [B, M] int64 (M = batch size, or all rows).
  at::Tensor minibatch_indices(int64_t step) const;
  // Dropout masks of step `step`, one per hidden layer, [B, M, hidden[l]] with values 0 or 1/(1 − dropout);
  // empty when dropout is 0.
  TensorList dropout_masks(int64_t step) const;
  // Logits [B, M, 2] for rows x [B, M, D]; `masks` as dropout_masks gives them, or empty for evaluation mode.
  at::Tensor forward(const TensorList& params, const at::Tensor& x, const TensorList& masks) const;
  // evaluate_model on the held-out test rows (evaluation mode: no dropout), one entry per problem.
  std::vector<ClassificationMetrics> test_metrics(const TensorList& params) const;

 private:
  at::Tensor train_x_, train_y_, test_x_, test_y_;
  TensorList params0_;
  std::vector<uint64_t> problem_seeds_;
  std::vector<int64_t> hidden_;
  bool leaky_;
  double dropout_;
  int64_t batch_size_;
  HamiltonianLossMode mode_;
  double reg_coeff_;
  mutable std::vector<at::Tensor> orders_;  // per-pass visiting orders [B, N] on CPU, by pass
};

class TabularTask final : public Task {
 public:
  explicit TabularTask(TabularOptions options);
  std::string name() const override { return "tabular"; }
  int64_t data_bytes_per_problem() const override;
  OptionMap options() const override;
  std::unique_ptr<ProblemBatch> sample(Split split, uint64_t seed, int64_t first, int64_t count,
                                       c10::Device device) const override;
  const data::PreparedTabular& prepared() const { return prepared_; }
  // Parameters per problem (4,130 for the default 30-64-32-2).
  int64_t num_params() const;

 private:
  TabularOptions options_;
  std::string source_;
  data::PreparedTabular prepared_;
};

}  // namespace hamlet::tasks
