#include "hamlet/tasks/cnn.hpp"

#include <algorithm>
#include <cmath>

#include "dtype.hpp"
#include "hamlet/core/error.hpp"
#include "hamlet/core/seed.hpp"
#include "hamlet/tasks/mlp.hpp"

namespace hamlet::tasks {
namespace {

constexpr int64_t kClasses = 10;
constexpr int64_t kKernel = 3;

}  // namespace

const OptionSpec<CnnOptions>& CnnOptions::spec() {
  using O = CnnOptions;
  static const auto s =
      OptionSpec<O>("cnn")
          .add("dataset", &O::dataset, "image dataset (hamlet data lists them)")
          .add("data_dir", &O::data_dir, "directory of the dataset (empty: its default location)")
          .add("channels", &O::channels, "output channels of each 3x3 conv + 2x2 pool layer, e.g. 8:16",
               checks::positive_list)
          .add("activation", &O::activation, "activation after every conv", checks::one_of({"relu", "sigmoid", "tanh", "elu"}))
          .add("pool", &O::pool, "2x2 pooling after every activation", checks::one_of({"max", "avg"}))
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

CnnBatch::CnnBatch(at::Tensor images, at::Tensor labels, int64_t side, TensorList params0,
                   std::vector<uint64_t> problem_seeds, std::string activation, std::string pool, int64_t batch_size)
    : images_(std::move(images)),
      labels_(std::move(labels)),
      side_(side),
      params0_(std::move(params0)),
      problem_seeds_(std::move(problem_seeds)),
      activation_(std::move(activation)),
      pool_(std::move(pool)),
      batch_size_(batch_size) {
  HAMLET_CHECK(images_.size(0) >= batch_size_, "cnn: the split has ", images_.size(0),
               " images, fewer than one minibatch of ", batch_size_);
}

std::vector<std::string> CnnBatch::param_names() const {
  std::vector<std::string> names;
  const std::size_t convs = params0_.size() / 2 - 1;
  for (std::size_t l = 0; l < convs; ++l) {
    names.push_back("conv" + std::to_string(l) + "_w");
    names.push_back("conv" + std::to_string(l) + "_b");
  }
  names.push_back("fc_w");
  names.push_back("fc_b");
  return names;
}

at::Tensor CnnBatch::minibatch_indices(int64_t step) const {
  HAMLET_CHECK(step >= 0, "cnn: negative step ", step);
  const int64_t n = images_.size(0);
  const int64_t per_epoch = n / batch_size_;
  const int64_t epoch = step / per_epoch;
  while (static_cast<int64_t>(orders_.size()) <= epoch) {
    // The MLP task's scheme: each problem visits the split in its own order, fresh for every pass, derived from
    // its seed alone (stream 0 of the seed is the initialisation), so a problem's minibatches ignore its batch.
    const auto e = static_cast<uint64_t>(orders_.size());
    std::vector<at::Tensor> rows;
    rows.reserve(problem_seeds_.size());
    for (uint64_t s : problem_seeds_) {
      at::Generator gen = make_generator(mix_seed(s, e + 1));
      rows.push_back(at::randperm(n, gen, at::TensorOptions().dtype(at::kLong)));
    }
    orders_.push_back(at::stack(rows));
  }
  return orders_[epoch].narrow(1, (step % per_epoch) * batch_size_, batch_size_);
}

at::Tensor CnnBatch::forward(const TensorList& params, const at::Tensor& x) const {
  HAMLET_CHECK(params.size() == params0_.size(), "cnn: expected ", params0_.size(), " parameter tensors, got ",
               params.size());
  const int64_t b = x.size(0), m = x.size(1);
  // Problems side by side along the channel axis, [M, B·C, S, S]: group b of a grouped convolution then sees
  // exactly problem b's channels, and pooling / activations treat every (image, problem, channel) plane alike.
  at::Tensor h = x.view({b, m, side_, side_}).transpose(0, 1).contiguous();
  const std::size_t convs = params.size() / 2 - 1;
  for (std::size_t l = 0; l < convs; ++l) {
    const at::Tensor& w = params[2 * l];  // [B, Cout, Cin, 3, 3]
    const at::Tensor weight = w.reshape({b * w.size(1), w.size(2), kKernel, kKernel});
    h = at::conv2d(h, weight, params[2 * l + 1].reshape({-1}), /*stride=*/1, /*padding=*/1, /*dilation=*/1,
                   /*groups=*/b);
    h = apply_activation(activation_, h);
    h = pool_ == "max" ? at::max_pool2d(h, 2, 2) : at::avg_pool2d(h, 2, 2);
  }
  // [M, B·C·s·s] read as [M, B, C·s·s] is each problem's channel-major flattening, as torch flattens [M, C, s, s].
  const at::Tensor features = h.reshape({m, b, -1}).transpose(0, 1);  // [B, M, F]
  const at::Tensor& fc_w = params[2 * convs];                          // [B, 10, F]
  return at::baddbmm(params[2 * convs + 1].unsqueeze(1), features, fc_w.transpose(1, 2));
}

at::Tensor CnnBatch::loss(const TensorList& params, int64_t step) const {
  const int64_t b = size();
  const at::Tensor idx = minibatch_indices(step).to(images_.device()).reshape({-1});
  const at::Tensor x = images_.index_select(0, idx).view({b, batch_size_, images_.size(1)});
  const at::Tensor y = labels_.index_select(0, idx).view({b, batch_size_, 1});
  const at::Tensor logp = at::log_softmax(forward(params, x), -1);
  return -logp.gather(2, y).squeeze(2).mean(1);
}

CnnTask::CnnTask(CnnOptions options) : options_(std::move(options)) {
  options_.validate();
  dataset_ = std::make_shared<data::Dataset>(data::load_dataset(options_.dataset, options_.data_dir));
  const int64_t pixels = dataset_->images.size(1);
  side_ = static_cast<int64_t>(std::llround(std::sqrt(static_cast<double>(pixels))));
  HAMLET_CHECK(side_ * side_ == pixels, "cnn.dataset: the images of '", options_.dataset, "' have ", pixels,
               " pixels, not a square image");
  int64_t fit = 0;  // conv + pool layers that keep the side >= 1: floor(log2 S)
  for (int64_t s = side_; s / 2 >= 1; s /= 2) ++fit;
  HAMLET_CHECK(static_cast<int64_t>(options_.channels.size()) <= fit, "cnn.channels: ", options_.channels.size(),
               " conv + 2x2 pool layers shrink ", side_, "x", side_, " images below 1x1; at most ", fit, " fit");
  split_ = data::make_split(dataset_->size(), static_cast<uint64_t>(options_.split_seed), options_.train_fraction,
                            options_.validation_fraction);
}

std::vector<int64_t> CnnTask::sides() const {
  std::vector<int64_t> s{side_};
  for (std::size_t l = 0; l < options_.channels.size(); ++l) s.push_back(s.back() / 2);
  return s;
}

OptionMap CnnTask::options() const {
  OptionMap out = options_.to_map();
  out["data_source"] = dataset_->source;
  out["data_images"] = std::to_string(dataset_->size());
  out["split_sizes"] = std::to_string(split_.train.numel()) + ":" + std::to_string(split_.validation.numel()) + ":" +
                       std::to_string(split_.test.numel());
  out["num_params"] = std::to_string(num_params());
  return out;
}

int64_t CnnTask::num_params() const {
  int64_t in = 1, total = 0;
  for (auto c : options_.channels) {
    total += (in * kKernel * kKernel + 1) * c;
    in = c;
  }
  const int64_t last = sides().back();
  return total + (in * last * last + 1) * kClasses;
}

int64_t CnnTask::data_bytes_per_problem() const {
  const int64_t element = options_.dtype == "float64" ? 8 : 4;
  const std::vector<int64_t> s = sides();
  // Per image: the gathered input, and per layer the conv output, its activation (both S_{l−1}² per channel) and
  // the pooled map (S_l²); backward holds a gradient of each as well.
  int64_t per_image = s[0] * s[0] + kClasses;
  for (std::size_t l = 0; l < options_.channels.size(); ++l) {
    per_image += options_.channels[l] * (2 * s[l] * s[l] + s[l + 1] * s[l + 1]);
  }
  return 2 * options_.batch_size * per_image * element;
}

int64_t CnnTask::default_batch() const {
  // A grouped convolution's cost per problem rises once a chunk's feature maps outgrow the cache: measured on one
  // core (AMD EPYC, LibTorch 1.13, forward + backward, 128 images), the 8 → 16 conv on 14x14 maps took 6.1, 8.9
  // and 10.2 ms per problem in groups of 1, 4 and 8, while the 1 → 8 conv on 8x8 maps got cheaper up to 8+.
  // So chunks keep the largest conv output near 2^21 elements (8 MB in float32): 2 MNIST problems, 32 digits.
  constexpr int64_t kMapElements = int64_t{1} << 21;
  const std::vector<int64_t> s = sides();
  int64_t largest = 1;
  for (std::size_t l = 0; l < options_.channels.size(); ++l) {
    largest = std::max(largest, options_.channels[l] * s[l] * s[l]);
  }
  return std::max<int64_t>(1, kMapElements / (options_.batch_size * largest));
}

std::unique_ptr<ProblemBatch> CnnTask::sample(Split split, uint64_t seed, int64_t first, int64_t count,
                                              c10::Device device) const {
  HAMLET_CHECK(count > 0 && first >= 0, "cnn: cannot sample ", count, " problems from index ", first);
  const auto dtype = detail::parse_dtype("cnn", options_.dtype);
  const at::Tensor& idx = split == Split::kTrain ? split_.train : split == Split::kValidation ? split_.validation
                                                                                              : split_.test;
  const at::Tensor images = dataset_->images.index_select(0, idx).to(device, dtype);
  const at::Tensor labels = dataset_->labels.index_select(0, idx).to(device);

  // Shapes of every parameter tensor of one problem, with the fan-in that sets its initialisation bound.
  struct Shape {
    std::vector<int64_t> sizes;
    int64_t fan_in;
  };
  std::vector<Shape> shapes;
  int64_t in = 1;
  for (auto c : options_.channels) {
    shapes.push_back({{c, in, kKernel, kKernel}, in * kKernel * kKernel});
    shapes.push_back({{c}, in * kKernel * kKernel});
    in = c;
  }
  const int64_t last = sides().back();
  shapes.push_back({{kClasses, in * last * last}, in * last * last});
  shapes.push_back({{kClasses}, in * last * last});

  std::vector<std::vector<at::Tensor>> per_tensor(shapes.size());
  std::vector<uint64_t> seeds;
  const auto f64 = at::TensorOptions().dtype(at::kDouble);
  for (int64_t i = first; i < first + count; ++i) {
    const uint64_t s = problem_seed(split, seed, i);
    seeds.push_back(s);
    // LibTorch's Conv2d and Linear defaults (kaiming_uniform with a = √5) reduce to U(−1/√fan_in, 1/√fan_in) for
    // weights, and biases use the same bound; drawn in float64 so the problem does not depend on the dtype.
    at::Generator gen = make_generator(mix_seed(s, 0));
    for (std::size_t t = 0; t < shapes.size(); ++t) {
      const double bound = 1.0 / std::sqrt(static_cast<double>(shapes[t].fan_in));
      per_tensor[t].push_back(at::rand(shapes[t].sizes, gen, f64) * (2 * bound) - bound);
    }
  }
  TensorList params0;
  for (auto& list : per_tensor) params0.push_back(at::stack(list).to(device, dtype));
  return std::make_unique<CnnBatch>(images, labels, side_, std::move(params0), std::move(seeds), options_.activation,
                                    options_.pool, options_.batch_size);
}

}  // namespace hamlet::tasks
