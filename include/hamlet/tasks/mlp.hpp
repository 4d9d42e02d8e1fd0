#pragma once
// MLP image classifier task (Andrychowicz et al. 2016 §3.2; AfoninAndrei/OPT-ML src/loss.py, src/optimizee.py).
//
// Network: 784 → hidden[0] → ... → hidden[k−1] → 10 with the chosen activation after every hidden layer,
// log-softmax + NLL, i.e. mean cross-entropy over a minibatch of `batch_size` images. Default 784-20-10 sigmoid,
// batch 128: 15,910 parameters. Initialisation: LibTorch/PyTorch Linear default, weights and biases
// ~ U(−1/√fan_in, 1/√fan_in), redrawn per problem from the problem seed.
//
// Batched: B problems are one tensor program. Parameters are, per layer l, "w<l>" [B, out, in] (LibTorch
// layout) and "b<l>" [B, out]; the forward pass is a baddbmm per layer. Every problem draws its own minibatch
// sequence: the images of its split are visited without replacement in a fresh seeded random order per pass
// (epoch), minibatch t = positions [t·128, (t+1)·128) of the concatenated passes (a pass's leftover that does
// not fill a batch is dropped). loss(θ, t) and its gradient use the same minibatch t.
//
// Options: dataset (mnist | fashion-mnist | digits (8x8, 64 inputs) | idx), data_dir, activation (sigmoid | relu | tanh | elu),
// hidden ("20", "40", "20:20"), batch_size (128), split_seed (0), train_fraction (0.5), validation_fraction
// (0.2), dtype (float32 | float64).
#include <memory>

#include "hamlet/core/option_spec.hpp"
#include "hamlet/data/dataset.hpp"
#include "hamlet/tasks/minibatches.hpp"
#include "hamlet/tasks/task.hpp"

namespace hamlet::tasks {

struct MlpOptions {
  std::string dataset = "mnist";
  std::string data_dir;  // empty: the dataset's default location
  std::string activation = "sigmoid";
  std::vector<int64_t> hidden{20};
  int64_t batch_size = 128;
  int64_t split_seed = 0;
  double train_fraction = 0.5;
  double validation_fraction = 0.2;
  std::string dtype = "float32";
  HAMLET_OPTIONS(MlpOptions);
};

// Applies a named activation ("sigmoid" | "relu" | "tanh" | "elu").
at::Tensor apply_activation(const std::string& activation, const at::Tensor& x);

class MlpBatch final : public ProblemBatch {
 public:
  // images: [N, 784] of the split (on the target device), labels: [N]; params0: initial parameters;
  // problem_seeds: one per problem (minibatch orders derive from them).
  MlpBatch(at::Tensor images, at::Tensor labels, TensorList params0, std::vector<uint64_t> problem_seeds,
           std::string activation, int64_t batch_size);
  int64_t size() const override { return static_cast<int64_t>(problem_seeds_.size()); }
  TensorList initial_params() const override { return params0_; }
  at::Tensor loss(const TensorList& params, int64_t step) const override;
  std::vector<std::string> param_names() const override;
  // Image indices (into the split) of minibatch `step` for every problem, [B, batch_size] int64.
  at::Tensor minibatch_indices(int64_t step) const;
  // Logits for images x [B, M, 784]: [B, M, 10].
  at::Tensor forward(const TensorList& params, const at::Tensor& x) const;

 private:
  at::Tensor images_, labels_;
  TensorList params0_;
  std::vector<uint64_t> problem_seeds_;
  std::string activation_;
  int64_t batch_size_;
  MinibatchOrder order_;  // each problem's minibatch sequence
};

class MlpTask final : public Task {
 public:
  explicit MlpTask(MlpOptions options);
  std::string name() const override { return "mlp"; }
  int64_t default_batch() const override;
  int64_t data_bytes_per_problem() const override;
  OptionMap options() const override;
  std::unique_ptr<ProblemBatch> sample(Split split, uint64_t seed, int64_t first, int64_t count,
                                       c10::Device device) const override;
  const data::Dataset& dataset() const { return *dataset_; }
  const data::DataSplit& split() const { return split_; }
  // Parameters per problem (15,910 for the default 784-20-10).
  int64_t num_params() const;

 private:
  MlpOptions options_;
  std::shared_ptr<data::Dataset> dataset_;
  data::DataSplit split_;
};

}  // namespace hamlet::tasks
