#include "hamlet/learned/learned_optimizer.hpp"

#include "hamlet/core/error.hpp"

namespace hamlet::learned {

int64_t LearnedOptimizer::num_params() const {
  int64_t n = 0;
  for (const auto& w : weights()) n += w.numel();
  return n;
}

void LearnedOptimizer::set_trainable(bool trainable) {
  TensorList ws = weights();
  // detach() shares storage, so toggling costs no copy; nothing writes to weights in place, so sharing is safe.
  for (auto& w : ws) w = w.detach().requires_grad_(trainable);
  set_weights(ws);
}

at::Tensor to_rows(const TensorList& xs) {
  HAMLET_CHECK(!xs.empty(), "learned optimizer: no parameter tensors");
  TensorList flat;
  flat.reserve(xs.size());
  for (const auto& x : xs) flat.push_back(x.reshape({-1}));
  return flat.size() == 1 ? flat[0] : at::cat(flat, 0);
}

at::Tensor to_rows(const TensorList& xs, int64_t width) {
  HAMLET_CHECK(!xs.empty(), "learned optimizer: no state tensors");
  TensorList flat;
  flat.reserve(xs.size());
  for (const auto& x : xs) {
    HAMLET_CHECK(x.dim() >= 2 && x.size(-1) == width, "learned optimizer: state tensor of shape ", x.sizes(),
                 " does not end in ", width, " values per coordinate");
    flat.push_back(x.reshape({-1, width}));
  }
  return flat.size() == 1 ? flat[0] : at::cat(flat, 0);
}

TensorList from_rows(const at::Tensor& rows, const TensorList& like, int64_t width) {
  std::vector<int64_t> counts;
  counts.reserve(like.size());
  int64_t total = 0;
  for (const auto& x : like) {
    counts.push_back(x.numel());
    total += x.numel();
  }
  HAMLET_CHECK(rows.size(0) == total, "learned optimizer: ", rows.size(0), " rows for ", total, " coordinates");
  TensorList out;
  out.reserve(like.size());
  int64_t offset = 0;
  for (std::size_t i = 0; i < like.size(); ++i) {
    std::vector<int64_t> shape(like[i].sizes().begin(), like[i].sizes().end());
    if (width > 0) shape.push_back(width);
    out.push_back(rows.narrow(0, offset, counts[i]).reshape(shape));
    offset += counts[i];
  }
  return out;
}

at::Tensor per_problem_row_sum(const at::Tensor& rows, const TensorList& like) {
  const TensorList parts = from_rows(rows, like);
  at::Tensor total;
  for (const auto& p : parts) {
    const at::Tensor s = p.reshape({p.size(0), -1}).sum(1);
    total = total.defined() ? total + s : s;
  }
  return total;
}

at::Tensor normalise_per_tensor(const at::Tensor& rows, const TensorList& like) {
  TensorList parts = from_rows(rows, like);
  TensorList flat;
  flat.reserve(parts.size());
  for (const auto& p : parts) {
    const at::Tensor block = p.reshape({p.size(0), -1});
    const at::Tensor sq = block.pow(2).sum(1, /*keepdim=*/true);
    // An all-zero block would be 0/0 = NaN in OPT-ML; dividing by 1 there keeps it zero. Taking the sqrt of the
    // masked value keeps the backward pass finite too (sqrt has an infinite slope at 0).
    const at::Tensor divisor = at::where(sq > 0, sq, at::ones_like(sq)).sqrt();
    flat.push_back((block / divisor).reshape({-1}));
  }
  return flat.size() == 1 ? flat[0] : at::cat(flat, 0);
}

at::Tensor uniform_weight(at::IntArrayRef shape, double bound, at::Generator& generator, at::ScalarType dtype) {
  return at::empty(shape, at::TensorOptions().dtype(at::kDouble)).uniform_(-bound, bound, generator).to(dtype);
}

at::ScalarType parse_weight_dtype(const std::string& field, const std::string& value) {
  if (value == "float32") return at::kFloat;
  if (value == "float64") return at::kDouble;
  throw Error(detail::concat(field, " must be float32 or float64, got '", value, "'"));
}

std::string weight_dtype_name(at::ScalarType dtype) { return dtype == at::kDouble ? "float64" : "float32"; }

std::size_t WeightSet::add(const std::string& name, at::Tensor value) {
  names_.push_back(name);
  values_.push_back(value.to(dtype_));
  return values_.size() - 1;
}

void WeightSet::assign(const TensorList& values) {
  HAMLET_CHECK(values.size() == values_.size(), owner_, ": expected ", values_.size(), " weight tensors, got ",
               values.size());
  for (std::size_t i = 0; i < values.size(); ++i) {
    HAMLET_CHECK(values[i].defined(), owner_, ": weight '", names_[i], "' is undefined");
    HAMLET_CHECK(values[i].sizes() == values_[i].sizes(), owner_, ": weight '", names_[i], "' has shape ",
                 values[i].sizes(), ", expected ", values_[i].sizes());
  }
  TensorList next;
  next.reserve(values.size());
  for (const auto& v : values) next.push_back(v.to(dtype_));
  values_ = std::move(next);
}

bool WeightSet::any_requires_grad() const {
  for (const auto& w : values_) {
    if (w.requires_grad()) return true;
  }
  return false;
}

TensorList WeightSet::on(const at::TensorOptions& options) const {
  TensorList out;
  out.reserve(values_.size());
  for (const auto& w : values_) out.push_back(w.to(options.device(), options.dtype().toScalarType()));
  return out;
}

at::ScalarType compute_dtype(at::ScalarType weights, const TensorList& params) {
  HAMLET_CHECK(!params.empty(), "learned optimizer: no parameter tensors");
  return at::promote_types(weights, params[0].scalar_type());
}

}  // namespace hamlet::learned
