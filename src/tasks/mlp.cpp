#include "hamlet/tasks/mlp.hpp"

#include <algorithm>
#include <cmath>

#include "dtype.hpp"
#include "linear_init.hpp"
#include "hamlet/core/error.hpp"
#include "hamlet/core/seed.hpp"

namespace hamlet::tasks {
namespace {

constexpr int64_t kClasses = 10;

}  // namespace

const OptionSpec<MlpOptions>& MlpOptions::spec() {
  using O = MlpOptions;
  static const auto s =
      OptionSpec<O>("mlp")
          .add("dataset", &O::dataset, "image dataset (hamlet data lists them)")
          .add("data_dir", &O::data_dir, "directory of the dataset (empty: its default location)")
          .add("activation", &O::activation, "hidden activation", checks::one_of({"sigmoid", "relu", "tanh", "elu"}))
          .add("hidden", &O::hidden, "hidden layer sizes, e.g. 20 or 40:40", checks::positive_list)
          .add("batch_size", &O::batch_size, "images per minibatch", checks::positive)
          .add("split_seed", &O::split_seed, "seed of the train/validation/test split of the images",
               checks::non_negative)
          .add("train_fraction", &O::train_fraction, "share of the images in the train split", checks::in_range(0, 1))
          .add("validation_fraction", &O::validation_fraction, "share of the images in the validation split",
               checks::in_range(0, 1))
          .add("dtype", &O::dtype, "float32 | float64", detail::check_dtype)
          .rule([](const std::string& owner, const O& o) {
            HAMLET_CHECK(o.train_fraction > 0 && o.validation_fraction > 0 &&
                             o.train_fraction + o.validation_fraction < 1.0,
                         owner, ".train_fraction + ", owner,
                         ".validation_fraction must be < 1 and both > 0, got ", o.train_fraction, " + ",
                         o.validation_fraction);
          });
  return s;
}

at::Tensor apply_activation(const std::string& activation, const at::Tensor& x) {
  if (activation == "sigmoid") return at::sigmoid(x);
  if (activation == "relu") return at::relu(x);
  if (activation == "tanh") return at::tanh(x);
  if (activation == "elu") return at::elu(x);
  throw Error("unknown activation '" + activation + "'; valid: sigmoid, relu, tanh, elu");
}

MlpBatch::MlpBatch(at::Tensor images, at::Tensor labels, TensorList params0, std::vector<uint64_t> problem_seeds,
                   std::string activation, int64_t batch_size)
    : images_(std::move(images)),
      labels_(std::move(labels)),
      params0_(std::move(params0)),
      problem_seeds_(std::move(problem_seeds)),
      activation_(std::move(activation)),
      batch_size_(batch_size),
      order_(problem_seeds_, images_.size(0), batch_size_, "mlp") {}

std::vector<std::string> MlpBatch::param_names() const {
  std::vector<std::string> names;
  for (std::size_t l = 0; l < params0_.size() / 2; ++l) {
    names.push_back("w" + std::to_string(l));
    names.push_back("b" + std::to_string(l));
  }
  return names;
}

at::Tensor MlpBatch::minibatch_indices(int64_t step) const { return order_.indices(step); }

at::Tensor MlpBatch::forward(const TensorList& params, const at::Tensor& x) const {
  HAMLET_CHECK(params.size() == params0_.size(), "mlp: expected ", params0_.size(), " parameter tensors, got ",
               params.size());
  at::Tensor h = x;
  const std::size_t layers = params.size() / 2;
  for (std::size_t l = 0; l < layers; ++l) {
    h = at::baddbmm(params[2 * l + 1].unsqueeze(1), h, params[2 * l].transpose(1, 2));
    if (l + 1 < layers) h = apply_activation(activation_, h);
  }
  return h;
}

at::Tensor MlpBatch::loss(const TensorList& params, int64_t step) const {
  const int64_t b = size();
  const at::Tensor idx = minibatch_indices(step).to(images_.device()).reshape({-1});
  const at::Tensor x = images_.index_select(0, idx).view({b, batch_size_, images_.size(1)});
  const at::Tensor y = labels_.index_select(0, idx).view({b, batch_size_, 1});
  const at::Tensor logp = at::log_softmax(forward(params, x), -1);
  return -logp.gather(2, y).squeeze(2).mean(1);
}

MlpTask::MlpTask(MlpOptions options) : options_(std::move(options)) {
  options_.validate();
  dataset_ = std::make_shared<data::Dataset>(data::load_dataset(options_.dataset, options_.data_dir));
  split_ = data::make_split(dataset_->size(), static_cast<uint64_t>(options_.split_seed), options_.train_fraction,
                            options_.validation_fraction);
}

OptionMap MlpTask::options() const {
  OptionMap out = options_.to_map();
  out["data_source"] = dataset_->source;
  out["data_images"] = std::to_string(dataset_->size());
  out["split_sizes"] = std::to_string(split_.train.numel()) + ":" + std::to_string(split_.validation.numel()) + ":" +
                       std::to_string(split_.test.numel());
  out["num_params"] = std::to_string(num_params());
  return out;
}

int64_t MlpTask::data_bytes_per_problem() const {
  const int64_t element = options_.dtype == "float64" ? 8 : 4;
  int64_t width = dataset_->images.size(1) + kClasses;
  for (auto h : options_.hidden) width += 2 * h;  // activations and their gradients
  // A step gathers the problem's minibatch, runs the layers forward and backward.
  return 2 * options_.batch_size * width * element;
}

int64_t MlpTask::default_batch() const {
  // Measured for 100 problems x 50 Adam steps of the 784-20-10 MLP: 8.4 s in one batch, 2.8 s in chunks of 20.
  constexpr int64_t kGatherElements = int64_t{1} << 22;
  return std::max<int64_t>(1, kGatherElements / (options_.batch_size * dataset_->images.size(1)));
}

int64_t MlpTask::num_params() const {
  int64_t in = dataset_->images.size(1), total = 0;
  for (auto h : options_.hidden) {
    total += (in + 1) * h;
    in = h;
  }
  return total + (in + 1) * kClasses;
}

std::unique_ptr<ProblemBatch> MlpTask::sample(Split split, uint64_t seed, int64_t first, int64_t count,
                                              c10::Device device) const {
  HAMLET_CHECK(count > 0 && first >= 0, "mlp: cannot sample ", count, " problems from index ", first);
  const auto dtype = detail::parse_dtype("mlp", options_.dtype);
  const at::Tensor& idx = split == Split::kTrain ? split_.train : split == Split::kValidation ? split_.validation
                                                                                              : split_.test;
  const at::Tensor images = dataset_->images.index_select(0, idx).to(device, dtype);
  const at::Tensor labels = dataset_->labels.index_select(0, idx).to(device);

  std::vector<int64_t> sizes{dataset_->images.size(1)};
  sizes.insert(sizes.end(), options_.hidden.begin(), options_.hidden.end());
  sizes.push_back(kClasses);
  std::vector<uint64_t> seeds;
  for (int64_t i = first; i < first + count; ++i) seeds.push_back(problem_seed(split, seed, i));
  TensorList params0 = detail::linear_stack_init(sizes, seeds, device, dtype);
  return std::make_unique<MlpBatch>(images, labels, std::move(params0), std::move(seeds), options_.activation,
                                    options_.batch_size);
}

}  // namespace hamlet::tasks
