#include "hamlet/tasks/image_classifier.hpp"

#include "dtype.hpp"
#include "linear_init.hpp"
#include "hamlet/core/error.hpp"

namespace hamlet::tasks {

const OptionSpec<ImageSplitOptions>& ImageSplitOptions::spec() {
  using O = ImageSplitOptions;
  static const auto s =
      OptionSpec<O>("images")
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

const OptionSpec<ImageDataOptions>& ImageDataOptions::spec() {
  using O = ImageDataOptions;
  static const auto s = OptionSpec<O>("images")
                            .add("dataset", &O::dataset, "image dataset (hamlet data lists them)")
                            .add("data_dir", &O::data_dir, "directory of the dataset (empty: its default location)")
                            .include_base<ImageSplitOptions>();
  return s;
}

ImageData::ImageData(const ImageDataOptions& options)
    : dataset_(std::make_shared<data::Dataset>(data::load_dataset(options.dataset, options.data_dir))),
      split_(data::make_split(dataset_->size(), static_cast<uint64_t>(options.split_seed), options.train_fraction,
                              options.validation_fraction)) {}

ImageProblems ImageData::problems(const std::string& owner, const std::string& dtype, Split split, uint64_t seed,
                                  int64_t first, int64_t count, c10::Device device) const {
  HAMLET_CHECK(count > 0 && first >= 0, owner, ": cannot sample ", count, " problems from index ", first);
  ImageProblems p;
  p.device = device;
  p.dtype = detail::parse_dtype(owner, dtype);
  const at::Tensor& idx = split == Split::kTrain ? split_.train : split == Split::kValidation ? split_.validation
                                                                                              : split_.test;
  p.images = dataset_->images.index_select(0, idx).to(device, p.dtype);
  p.labels = dataset_->labels.index_select(0, idx).to(device);
  p.seeds = detail::problem_seeds(split, seed, first, count);
  return p;
}

void ImageData::record(OptionMap& out) const {
  out["data_source"] = dataset_->source;
  out["data_images"] = std::to_string(dataset_->size());
  out["split_sizes"] = std::to_string(split_.train.numel()) + ":" + std::to_string(split_.validation.numel()) + ":" +
                       std::to_string(split_.test.numel());
}

ImageClassifierBatch::ImageClassifierBatch(at::Tensor images, at::Tensor labels, TensorList params0,
                                           std::vector<uint64_t> problem_seeds, int64_t batch_size,
                                           const std::string& owner)
    : images_(std::move(images)),
      labels_(std::move(labels)),
      params0_(std::move(params0)),
      problem_seeds_(std::move(problem_seeds)),
      batch_size_(batch_size),
      order_(problem_seeds_, images_.size(0), batch_size_, owner) {}

at::Tensor ImageClassifierBatch::loss(const TensorList& params, int64_t step) const {
  const int64_t b = size();
  const at::Tensor idx = minibatch_indices(step).to(images_.device()).reshape({-1});
  const at::Tensor x = images_.index_select(0, idx).view({b, batch_size_, images_.size(1)});
  const at::Tensor y = labels_.index_select(0, idx).view({b, batch_size_, 1});
  const at::Tensor logp = at::log_softmax(forward(params, x), -1);
  return -logp.gather(2, y).squeeze(2).mean(1);
}

}  // namespace hamlet::tasks
