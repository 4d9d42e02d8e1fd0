#pragma once
// Small convolutional image classifier task (issue 30 §1; the conv → pool → conv → pool → linear shape of the
// small image tasks in learned_optimization's task families).
//
// Network, for channels C_1:...:C_k (default 8:16) on square images of side S (28 for mnist / fashion-mnist, 8 for
// digits, any square size for idx):
//
//   for l = 1..k:  conv 3x3, stride 1, zero padding 1 (C_{l−1} → C_l, C_0 = 1)  → activation → 2x2 pooling, stride 2
//   flatten (channel-major, as torch's view of [M, C, h, w]) → linear to 10 classes → log-softmax + NLL
//
// i.e. mean cross-entropy over a minibatch of `batch_size` images. Padding 1 keeps a conv's output the size of its
// input ("same"), so only the pooling shrinks the image: side S_l = floor(S_{l−1} / 2) (an odd side drops its last
// row and column, as torch's pooling does). On the 8x8 digits: 8 → 4 → 2, the linear layer sees 2·2·C_2 features;
// on 28x28 images 28 → 14 → 7, 7·7·C_2. Every side must stay ≥ 1 (digits allow at most 3 conv layers, 28x28 at
// most 4); more layers are refused naming `channels`. Padding also means the border pixels of the small digits
// pass through as many 3x3 windows as inner ones, which unpadded convolutions (8 → 6 → 3 → 1) would not allow.
// Default 8:16 on 28x28: 80 + 1,168 + 7,850 = 9,098 parameters; on 8x8: 80 + 1,168 + 650 = 1,898.
//
// Initialisation: LibTorch/PyTorch Conv2d and Linear defaults, weights and biases ~ U(−1/√fan_in, 1/√fan_in)
// (fan_in = C_{l−1}·9 for a conv, the flattened features for the linear layer), drawn in float64 per problem from
// the problem seed and then cast to `dtype`, so problem i is the same for either dtype and any batch.
//
// Batched: B problems are one tensor program, with no loop over problems. Parameters, per conv layer l,
// "conv<l>_w" [B, C_l, C_{l−1}, 3, 3] (torch's Conv2d layout) and "conv<l>_b" [B, C_l]; then "fc_w" [B, 10, F]
// and "fc_b" [B, 10] (F = C_k·S_k²). The B problems' activations are stacked along the channel axis,
// [M, B·C, S, S], and every conv is one grouped convolution: at::conv2d with groups = B and the weights viewed as
// [B·C_l, C_{l−1}, 3, 3], so group b convolves only problem b's channels with problem b's kernels. Chosen over
// im2col + bmm (unfold each problem's 3x3 windows, one batched matrix product): that needs an unfolded copy of the
// activations 9x their size, and its backward (col2im) made it 3–4x slower than the grouped convolution for the
// 8 → 16 layer on one CPU core; the grouped convolution is the call torch's own Conv2d makes, and pooling and
// activations then act on all problems at once unchanged. The linear layer is a baddbmm over [B, M, F]. Every problem draws its own
// minibatch sequence exactly as the MLP task does (mlp.hpp): a fresh seeded random order of its split per pass,
// minibatch t = positions [t·M, (t+1)·M); loss(θ, t) and its gradient use minibatch t.
//
// Speed (CPU): the convolutions are compute-bound, so batching saves only the per-call overheads; per problem a
// grouped convolution gets slower once a chunk's feature maps outgrow the cache. default_batch() therefore keeps
// the largest conv output of a chunk near 2^21 elements: 2 problems on 28x28 images, 32 on the 8x8 digits.
//
// Options: dataset (mnist | fashion-mnist | digits | idx), data_dir, channels ("8:16"), activation (relu | sigmoid
// | tanh | elu; default relu), pool (max | avg; default max), batch_size (128), split_seed (0), train_fraction
// (0.5), validation_fraction (0.2), dtype (float32 | float64).
#include "hamlet/tasks/image_classifier.hpp"

namespace hamlet::tasks {

struct CnnOptions : ImageDataOptions {
  std::vector<int64_t> channels{8, 16};
  std::string activation = "relu";
  std::string pool = "max";
  HAMLET_OPTIONS(CnnOptions);
};

class CnnBatch final : public ImageClassifierBatch {
 public:
  // images: [N, S·S] of the split (on the target device), labels: [N]; params0: initial parameters;
  // problem_seeds: one per problem (minibatch orders derive from them).
  CnnBatch(at::Tensor images, at::Tensor labels, int64_t side, TensorList params0,
           std::vector<uint64_t> problem_seeds, std::string activation, std::string pool, int64_t batch_size);
  std::vector<std::string> param_names() const override;
  // Logits for images x [B, M, S·S] (problem b classifies its own x[b]): [B, M, 10].
  at::Tensor forward(const TensorList& params, const at::Tensor& x) const override;

 private:
  int64_t side_;
  std::string activation_, pool_;
};

class CnnTask final : public ImageClassifierTask<CnnOptions> {
 public:
  // Refuses more conv + pool layers than the images' side allows.
  explicit CnnTask(CnnOptions options);
  int64_t default_batch() const override;
  int64_t data_bytes_per_problem() const override;
  // Image side S (images are S x S).
  int64_t side() const { return side_; }
  // 9,098 for the default 8:16 on 28x28.
  int64_t num_params() const override;

 protected:
  std::unique_ptr<ProblemBatch> make_batch(ImageProblems problems) const override;

 private:
  // Sides S_0 = S, S_1, ..., S_k after each conv + pool.
  std::vector<int64_t> sides() const;

  int64_t side_ = 0;
};

}  // namespace hamlet::tasks
