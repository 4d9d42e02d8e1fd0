#pragma once
// What the image-classification tasks (mlp, cnn) share: their data options, the dataset with its seeded
// train/validation/test split, each problem's minibatch sequence (minibatches.hpp) and the loss, mean
// cross-entropy of the model's logits over minibatch t of the split (log-softmax + NLL). A task adds only its
// model: its options, its parameter shapes and initialisation, and forward().
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "hamlet/core/option_spec.hpp"
#include "hamlet/data/dataset.hpp"
#include "hamlet/tasks/minibatches.hpp"
#include "hamlet/tasks/task.hpp"

namespace hamlet::tasks {

// How an image-classification task uses a dataset: the minibatch size, the seeded train/validation/test split and
// the dtype. Shared by the tasks on one dataset (mlp, cnn) and the family drawing from several (mlp-family).
struct ImageSplitOptions {
  int64_t batch_size = 128;       // images per minibatch
  int64_t split_seed = 0;         // seed of the train/validation/test split
  double train_fraction = 0.5;
  double validation_fraction = 0.2;
  std::string dtype = "float32";  // float32 | float64
  HAMLET_OPTIONS(ImageSplitOptions);
};

// Data options of an image-classification task on one dataset. A task's options derive from this struct and list
// it with OptionSpec::include_base, so the keys stay flat ("dataset", "batch_size", ...) and messages name the task.
struct ImageDataOptions : ImageSplitOptions {
  std::string dataset = "mnist";  // mnist | fashion-mnist | digits (8x8) | idx (hamlet data lists them)
  std::string data_dir;           // empty: the dataset's default location
  HAMLET_OPTIONS(ImageDataOptions);
};

// What a batch of image-classification problems starts from: the split's images [N, pixels] (in `dtype`) and
// labels [N] on `device`, and each problem's seed (problem_seed).
struct ImageProblems {
  at::Tensor images, labels;
  std::vector<uint64_t> seeds;
  c10::Device device = c10::kCPU;
  at::ScalarType dtype = at::kFloat;
};

// The loaded dataset and its split, shared by copies of a task.
class ImageData {
 public:
  // Loads options.dataset and splits it with options.split_seed; throws hamlet::Error on a missing or bad file.
  explicit ImageData(const ImageDataOptions& options);
  const data::Dataset& dataset() const { return *dataset_; }
  const data::DataSplit& split() const { return split_; }
  // Pixels per image.
  int64_t pixels() const { return dataset_->images.size(1); }
  // Adds where the data came from to a task's recorded options: data_source, data_images, split_sizes.
  void record(OptionMap& out) const;
  // Problems [first, first + count) of (split, seed) as `owner`'s sample() is asked for them (`dtype`: the option's
  // text); throws hamlet::Error naming `owner` for a bad range.
  ImageProblems problems(const std::string& owner, const std::string& dtype, Split split, uint64_t seed,
                         int64_t first, int64_t count, c10::Device device) const;

 private:
  std::shared_ptr<data::Dataset> dataset_;
  data::DataSplit split_;
};

// B image classifiers of one architecture as one tensor program. Every problem draws its own minibatch sequence
// from its seed (MinibatchOrder); loss(θ, t) = mean over the M images of minibatch t of −log softmax(logits)[label].
class ImageClassifierBatch : public ProblemBatch {
 public:
  int64_t size() const override { return static_cast<int64_t>(problem_seeds_.size()); }
  TensorList initial_params() const override { return params0_; }
  at::Tensor loss(const TensorList& params, int64_t step) const override;
  // Image indices (into the split) of minibatch `step` for every problem, [B, batch_size] int64.
  at::Tensor minibatch_indices(int64_t step) const { return order_.indices(step); }
  // Logits for images x [B, M, pixels] (problem b classifies its own x[b]): [B, M, classes].
  virtual at::Tensor forward(const TensorList& params, const at::Tensor& x) const = 0;

 protected:
  // images: [N, pixels] of the split (on the target device), labels: [N]; params0: initial parameters;
  // problem_seeds: one per problem; `owner` names the task in errors.
  ImageClassifierBatch(at::Tensor images, at::Tensor labels, TensorList params0, std::vector<uint64_t> problem_seeds,
                       int64_t batch_size, const std::string& owner);

  at::Tensor images_, labels_;
  TensorList params0_;
  std::vector<uint64_t> problem_seeds_;
  int64_t batch_size_;
  MinibatchOrder order_;  // each problem's minibatch sequence
};

// The Task of an image classifier configured by Options (derived from ImageDataOptions, with a spec() whose owner is
// the task's registry name, "mlp"): it validates and keeps the options, loads the data, records the resolved
// options with the data's provenance and the parameter count, and samples problems by handing the split's images
// and the problems' seeds to the subclass's make_batch(), which draws the parameters and builds its batch.
template <typename Options>
class ImageClassifierTask : public Task {
 public:
  explicit ImageClassifierTask(Options options) : options_(validated(std::move(options))), data_(options_) {}
  // With data already loaded (several tasks on one dataset share it): `data` must be what options' data part loads.
  ImageClassifierTask(Options options, ImageData data)
      : options_(validated(std::move(options))), data_(std::move(data)) {}
  std::string name() const override { return Options::spec().owner(); }
  OptionMap options() const override {
    OptionMap out = options_.to_map();
    data_.record(out);
    out["num_params"] = std::to_string(num_params());
    return out;
  }
  std::unique_ptr<ProblemBatch> sample(Split split, uint64_t seed, int64_t first, int64_t count,
                                       c10::Device device) const override {
    return make_batch(data_.problems(name(), options_.dtype, split, seed, first, count, device));
  }
  const data::Dataset& dataset() const { return data_.dataset(); }
  const data::DataSplit& split() const { return data_.split(); }
  // Parameters per problem.
  virtual int64_t num_params() const = 0;

 protected:
  virtual std::unique_ptr<ProblemBatch> make_batch(ImageProblems problems) const = 0;

  Options options_;
  ImageData data_;
};

}  // namespace hamlet::tasks
