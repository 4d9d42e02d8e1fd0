#include "hamlet/tasks/tabular.hpp"

#include <cmath>
#include <numeric>

#include "dtype.hpp"
#include "linear_init.hpp"
#include "hamlet/core/error.hpp"
#include "hamlet/core/seed.hpp"
#include "hamlet/data/breast_cancer.hpp"

namespace hamlet::tasks {
namespace {

constexpr int64_t kClasses = 2;
// Streams derived from a problem's seed: 0 initialisation (as the other tasks), 1 + pass for minibatch orders, and
// dropout masks under their own tag so that no step's mask stream can coincide with an order stream.
constexpr uint64_t kDropoutStream = 0x64726f70ULL;  // "drop"

}  // namespace

const OptionSpec<TabularOptions>& TabularOptions::spec() {
  using O = TabularOptions;
  static const auto s =
      OptionSpec<O>("tabular")
          .add("dataset", &O::dataset, "tabular data set", checks::one_of({"breast_cancer"}))
          .add("data_dir", &O::data_dir, "directory of the data set (empty: <data root>/breast_cancer)")
          .add("hidden", &O::hidden, "hidden layer sizes of HamiltonianNN, e.g. 64:32 or 512:256",
               checks::positive_list)
          .add("activation", &O::activation, "hidden activation (leaky_relu has slope 0.01)",
               checks::one_of({"leaky_relu", "relu"}))
          .add("dropout", &O::dropout, "dropout rate after every hidden activation", checks::in_range(0, 1))
          .add("batch_size", &O::batch_size, "training rows per minibatch (0: all of them every step)",
               checks::non_negative)
          .add("loss", &O::loss,
               "hamiltonian_loss mode: faithful (CE + detached reg_coeff*sum of tensor norms) or l2 "
               "(CE + reg_coeff/2*|theta|^2)",
               checks::one_of({"faithful", "l2"}))
          .add("reg_coeff", &O::reg_coeff, "coefficient of hamiltonian_loss's parameter term", checks::non_negative)
          .add("test_size", &O::test_size, "share of the rows held out as test rows (never trained on)",
               checks::in_range(0, 1))
          .add("split_seed", &O::split_seed, "seed of the train/test split and of SMOTE", checks::non_negative)
          .add("smote", &O::smote, "balance the training rows with SMOTE")
          .add("smote_k", &O::smote_k, "nearest neighbours SMOTE interpolates towards", checks::positive)
          .add("dtype", &O::dtype, "float32 | float64", detail::check_dtype)
          .rule([](const std::string& owner, const O& o) {
            HAMLET_CHECK(o.test_size > 0, owner, ".test_size must be > 0, got ", o.test_size);
          });
  return s;
}

TabularBatch::TabularBatch(at::Tensor train_x, at::Tensor train_y, at::Tensor test_x, at::Tensor test_y,
                           TensorList params0, std::vector<uint64_t> problem_seeds, const TabularOptions& options)
    : train_x_(std::move(train_x)),
      train_y_(std::move(train_y)),
      test_x_(std::move(test_x)),
      test_y_(std::move(test_y)),
      params0_(std::move(params0)),
      problem_seeds_(std::move(problem_seeds)),
      hidden_(options.hidden),
      leaky_(options.activation == "leaky_relu"),
      dropout_(options.dropout),
      batch_size_(options.batch_size),
      mode_(parse_hamiltonian_loss_mode(options.loss)),
      reg_coeff_(options.reg_coeff),
      // batch_size 0 is the full batch, which draws no order.
      order_(problem_seeds_, train_x_.size(0), batch_size_ > 0 ? batch_size_ : train_x_.size(0), "tabular") {}

std::vector<std::string> TabularBatch::param_names() const {
  return detail::linear_stack_names(params0_.size() / 2);
}

at::Tensor TabularBatch::minibatch_indices(int64_t step) const {
  const int64_t n = train_x_.size(0);
  const auto b = static_cast<int64_t>(problem_seeds_.size());
  // Full batch: every problem sees every row in order; nothing random, so no per-problem work.
  if (batch_size_ == 0) return at::arange(n, at::TensorOptions().dtype(at::kLong)).unsqueeze(0).expand({b, n});
  return order_.indices(step);
}

TensorList TabularBatch::dropout_masks(int64_t step) const {
  if (dropout_ == 0.0) return {};
  const int64_t m = batch_size_ == 0 ? train_x_.size(0) : batch_size_;
  const int64_t width = std::accumulate(hidden_.begin(), hidden_.end(), int64_t{0});
  // One uniform draw per problem and step covers all hidden layers; drawn in float64 so that a problem's masks do
  // not depend on the task's dtype. Keeping u >= p keeps each unit with probability 1 − p.
  std::vector<at::Tensor> per_problem;
  per_problem.reserve(problem_seeds_.size());
  const auto f64 = at::TensorOptions().dtype(at::kDouble);
  for (uint64_t s : problem_seeds_) {
    at::Generator gen = make_generator(mix_seeds({s, kDropoutStream, static_cast<uint64_t>(step)}));
    per_problem.push_back(at::rand({m, width}, gen, f64));
  }
  const at::Tensor keep = (at::stack(per_problem) >= dropout_).to(train_x_.options().dtype()) / (1.0 - dropout_);
  const at::Tensor on_device = keep.to(train_x_.device());
  TensorList masks;
  int64_t offset = 0;
  for (int64_t h : hidden_) {
    masks.push_back(on_device.narrow(2, offset, h));
    offset += h;
  }
  return masks;
}

at::Tensor TabularBatch::forward(const TensorList& params, const at::Tensor& x, const TensorList& masks) const {
  return detail::linear_stack_forward("tabular", params, params0_.size(), x, [&](std::size_t l, const at::Tensor& h) {
    const at::Tensor a = leaky_ ? at::leaky_relu(h, 0.01) : at::relu(h);
    // HamiltonianNN applies dropout after the activation of every hidden layer.
    return masks.empty() ? a : a * masks[l];
  });
}

at::Tensor TabularBatch::loss(const TensorList& params, int64_t step) const {
  const int64_t b = size();
  const at::Tensor idx = minibatch_indices(step).to(train_x_.device());
  const int64_t m = idx.size(1);
  const at::Tensor flat = idx.reshape({-1});
  const at::Tensor x = train_x_.index_select(0, flat).view({b, m, train_x_.size(1)});
  const at::Tensor y = train_y_.index_select(0, flat).view({b, m});
  return hamiltonian_loss(forward(params, x, dropout_masks(step)), y, params, mode_, reg_coeff_);
}

std::vector<ClassificationMetrics> TabularBatch::test_metrics(const TensorList& params) const {
  const int64_t b = size();
  const at::Tensor x = test_x_.unsqueeze(0).expand({b, test_x_.size(0), test_x_.size(1)});
  const at::Tensor predictions = forward(detach_all(params), x, {}).argmax(-1).cpu();
  std::vector<ClassificationMetrics> out;
  for (int64_t i = 0; i < b; ++i) out.push_back(classification_metrics(test_y_.cpu(), predictions[i]));
  return out;
}

TabularTask::TabularTask(TabularOptions options) : options_(std::move(options)) {
  options_.validate();
  const data::TabularDataset d = data::load_breast_cancer(options_.data_dir);
  source_ = d.source;
  data::PrepareTabularOptions prep;
  prep.test_size = options_.test_size;
  prep.seed = static_cast<uint64_t>(options_.split_seed);
  prep.smote = options_.smote;
  prep.smote_k = options_.smote_k;
  prepared_ = data::prepare_tabular(d, prep);
}

OptionMap TabularTask::options() const {
  OptionMap out = options_.to_map();
  out["data_source"] = source_;
  out["rows"] = std::to_string(prepared_.train_x.size(0)) + ":" + std::to_string(prepared_.test_x.size(0));
  out["synthetic_rows"] = std::to_string(prepared_.synthetic);
  out["num_params"] = std::to_string(num_params());
  return out;
}

int64_t TabularTask::num_params() const {
  int64_t in = prepared_.train_x.size(1), total = 0;
  for (auto h : options_.hidden) {
    total += (in + 1) * h;
    in = h;
  }
  return total + (in + 1) * kClasses;
}

int64_t TabularTask::data_bytes_per_problem() const {
  const int64_t element = options_.dtype == "float64" ? 8 : 4;
  const int64_t m = options_.batch_size == 0 ? prepared_.train_x.size(0) : options_.batch_size;
  int64_t width = prepared_.train_x.size(1) + kClasses;
  for (auto h : options_.hidden) width += 3 * h;  // activations, their gradients and the dropout mask
  // Plus the test rows test_metrics runs through the network once.
  return 2 * m * width * element + prepared_.test_x.numel() * element;
}

std::unique_ptr<ProblemBatch> TabularTask::sample(Split split, uint64_t seed, int64_t first, int64_t count,
                                                  c10::Device device) const {
  HAMLET_CHECK(count > 0 && first >= 0, "tabular: cannot sample ", count, " problems from index ", first);
  const auto dtype = detail::parse_dtype("tabular", options_.dtype);
  std::vector<int64_t> sizes{prepared_.train_x.size(1)};
  sizes.insert(sizes.end(), options_.hidden.begin(), options_.hidden.end());
  sizes.push_back(kClasses);
  std::vector<uint64_t> seeds = detail::problem_seeds(split, seed, first, count);
  TensorList params0 = detail::linear_stack_init(sizes, seeds, device, dtype);
  return std::make_unique<TabularBatch>(prepared_.train_x.to(device, dtype), prepared_.train_y.to(device),
                                        prepared_.test_x.to(device, dtype), prepared_.test_y.to(device),
                                        std::move(params0), std::move(seeds), options_);
}

}  // namespace hamlet::tasks
