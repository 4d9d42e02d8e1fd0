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
#include "hamlet/tasks/image_classifier.hpp"

namespace hamlet::tasks {

struct MlpOptions : ImageDataOptions {
  std::string activation = "sigmoid";
  std::vector<int64_t> hidden{20};
  HAMLET_OPTIONS(MlpOptions);
};

// Applies a named activation ("sigmoid" | "relu" | "tanh" | "elu").
at::Tensor apply_activation(const std::string& activation, const at::Tensor& x);

class MlpBatch final : public ImageClassifierBatch {
 public:
  // images: [N, 784] of the split (on the target device), labels: [N]; params0: initial parameters;
  // problem_seeds: one per problem (minibatch orders derive from them).
  MlpBatch(at::Tensor images, at::Tensor labels, TensorList params0, std::vector<uint64_t> problem_seeds,
           std::string activation, int64_t batch_size);
  std::vector<std::string> param_names() const override;
  // Logits for images x [B, M, 784]: [B, M, 10].
  at::Tensor forward(const TensorList& params, const at::Tensor& x) const override;

 private:
  std::string activation_;
};

class MlpTask final : public ImageClassifierTask<MlpOptions> {
 public:
  using ImageClassifierTask::ImageClassifierTask;
  int64_t default_batch() const override;
  int64_t data_bytes_per_problem() const override;
  // 15,910 for the default 784-20-10.
  int64_t num_params() const override;

 protected:
  std::unique_ptr<ProblemBatch> make_batch(ImageProblems problems) const override;
};

}  // namespace hamlet::tasks
