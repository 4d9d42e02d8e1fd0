#include "hamlet/tasks/cnn.hpp"

#include <algorithm>
#include <cmath>

#include "dtype.hpp"
#include "linear_init.hpp"
#include "hamlet/core/error.hpp"
#include "hamlet/core/seed.hpp"
#include "hamlet/tasks/mlp.hpp"

namespace hamlet::tasks {
namespace {

constexpr int64_t kClasses = 10;
constexpr int64_t kKernel = 3;

// Every parameter tensor of one problem of `channels` conv layers whose last pooled map has side `last`, with
// LibTorch's Conv2d / Linear default bound from its fan-in.
std::vector<detail::TensorInit> parameter_tensors(const std::vector<int64_t>& channels, int64_t last) {
  std::vector<detail::TensorInit> tensors;
  int64_t in = 1;
  for (const int64_t c : channels) {
    tensors.push_back({{c, in, kKernel, kKernel}, detail::fan_in_bound(in * kKernel * kKernel)});
    tensors.push_back({{c}, detail::fan_in_bound(in * kKernel * kKernel)});
    in = c;
  }
  tensors.push_back({{kClasses, in * last * last}, detail::fan_in_bound(in * last * last)});
  tensors.push_back({{kClasses}, detail::fan_in_bound(in * last * last)});
  return tensors;
}

}  // namespace

const OptionSpec<CnnOptions>& CnnOptions::spec() {
  using O = CnnOptions;
  static const auto s =
      OptionSpec<O>("cnn")
          .include_base<ImageDataOptions>()
          .add("channels", &O::channels, "output channels of each 3x3 conv + 2x2 pool layer, e.g. 8:16",
               checks::positive_list)
          .add("activation", &O::activation, "activation after every conv",
               checks::one_of({"relu", "sigmoid", "tanh", "elu"}))
          .add("pool", &O::pool, "2x2 pooling after every activation", checks::one_of({"max", "avg"}));
  return s;
}

CnnBatch::CnnBatch(at::Tensor images, at::Tensor labels, int64_t side, TensorList params0,
                   std::vector<uint64_t> problem_seeds, std::string activation, std::string pool, int64_t batch_size)
    : ImageClassifierBatch(std::move(images), std::move(labels), std::move(params0), std::move(problem_seeds),
                           batch_size, "cnn"),
      side_(side),
      activation_(std::move(activation)),
      pool_(std::move(pool)) {}

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

CnnTask::CnnTask(CnnOptions options) : ImageClassifierTask(std::move(options)) {
  const int64_t pixels = data_.pixels();
  side_ = static_cast<int64_t>(std::llround(std::sqrt(static_cast<double>(pixels))));
  HAMLET_CHECK(side_ * side_ == pixels, "cnn.dataset: the images of '", options_.dataset, "' have ", pixels,
               " pixels, not a square image");
  int64_t fit = 0;  // conv + pool layers that keep the side >= 1: floor(log2 S)
  for (int64_t s = side_; s / 2 >= 1; s /= 2) ++fit;
  HAMLET_CHECK(static_cast<int64_t>(options_.channels.size()) <= fit, "cnn.channels: ", options_.channels.size(),
               " conv + 2x2 pool layers shrink ", side_, "x", side_, " images below 1x1; at most ", fit, " fit");
}

std::vector<int64_t> CnnTask::sides() const {
  std::vector<int64_t> s{side_};
  for (std::size_t l = 0; l < options_.channels.size(); ++l) s.push_back(s.back() / 2);
  return s;
}

int64_t CnnTask::num_params() const {
  int64_t total = 0;
  for (const auto& t : parameter_tensors(options_.channels, sides().back())) {
    int64_t n = 1;
    for (const int64_t size : t.sizes) n *= size;
    total += n;
  }
  return total;
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

std::unique_ptr<ProblemBatch> CnnTask::make_batch(ImageProblems p) const {
  TensorList params0 =
      detail::init_per_problem(parameter_tensors(options_.channels, sides().back()), p.seeds, p.device, p.dtype);
  return std::make_unique<CnnBatch>(std::move(p.images), std::move(p.labels), side_, std::move(params0),
                                    std::move(p.seeds), options_.activation, options_.pool, options_.batch_size);
}

}  // namespace hamlet::tasks
