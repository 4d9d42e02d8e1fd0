#pragma once
// Learned optimizers: Optimizers whose update is a differentiable function of trainable weights φ.
//
// They implement the same functional interface as the hand-designed optimizers (hamlet/optim/optimizer.hpp),
// so `hamlet evaluate` runs them unchanged and meta-training differentiates θ_{t+1} = update(...) with respect to
// weights(). They are coordinatewise (docs/methods.md §0): every scalar parameter of every problem is one row of a
// [R, features] batch (R = B · parameters per problem), and all rows share φ. Per-coordinate carried state lives
// in OptimizerState::slots with one tensor per parameter tensor ([B, ..., k] for k state values per coordinate).
//
// Evaluation calls update() under at::NoGradGuard; an optimizer that needs autograd internally (∂V/∂q of the
// structured PHNN) re-enables it locally and detaches its outputs when its weights do not require grad.
//
// Implementations: PhnnPaper ("phnn-paper", phnn_paper.hpp), Phnn ("phnn", phnn.hpp), LstmOptimizer ("lstm",
// lstm.hpp), MlpLopt ("mlp-lopt", mlp_lopt.hpp); construction by name and weight files in registry.hpp.
//
// Dtype and device: weights are held in the optimizer's `dtype` option (float32 by default) on the CPU unless
// set_weights() put them elsewhere. update() evaluates the network in the promoted dtype of weights and
// parameters (float32 weights on float64 problems compute in float64), on the device of the parameters; the
// conversion is part of the autograd graph, so meta-gradients reach the held weights. New parameters keep the
// dtype of the old ones; carried state has the compute dtype.
//
// learning_rate() is the output scale out_mul (θ ← θ + out_mul·u), the knob a learning-rate scan would turn; the
// options carry it as "out_mul", not "lr".
#include <string>
#include <vector>

#include "hamlet/core/option_spec.hpp"
#include "hamlet/optim/optimizer.hpp"

namespace hamlet::learned {

class LearnedOptimizer : public optim::Optimizer {
 public:
  // The trainable weights in a fixed order, and their names ("V.0.weight", ...). The tensors are the ones the
  // update uses, so gradients of a loss computed through update() with respect to them are meta-gradients.
  virtual TensorList weights() const = 0;
  virtual std::vector<std::string> weight_names() const = 0;
  // Replaces the weights (same order, names and shapes; checked). Used by the meta-optimizer and by loading.
  // Values are converted to the optimizer's dtype; device and requires_grad are taken as given.
  virtual void set_weights(const TensorList& weights) = 0;
  // Architecture string recorded in weight files, e.g. "phnn-paper d=2 mass_factor=LLt"; loading a file into an
  // optimizer with another architecture string is an error.
  virtual std::string architecture() const = 0;
  // Total number of scalar weights (the paper's parameter count).
  int64_t num_params() const;
  // Makes every weight a leaf that requires grad (true) or a plain tensor (false), keeping the values.
  void set_trainable(bool trainable);
  // Whether update() treats the B problems of a batch independently: problem b's new params, state slots and
  // state scalars depend only on problem b's slices (index b of dim 0) of params, grads, loss, the state's slots
  // and scalars, besides the weights and the step counter, and running a subset of the problems gives those
  // problems' results (up to floating-point reassociation). Every reduction ("per tensor", the diagnostics, state
  // scalars) is then per problem. --recompute relies on it to re-run a step's backward a few problems at a time
  // (meta/recompute.hpp). False unless an implementation states it; all built-in ones do.
  virtual bool updates_problems_independently() const { return false; }
};

using LearnedOptimizerPtr = std::shared_ptr<LearnedOptimizer>;

// ---- Building blocks shared by the implementations (and their tests) ----

// Row layout of the coordinatewise batch: tensor after tensor, within a tensor problem after problem, within a
// problem the coordinates in row-major order. Row offset of (tensor i, problem b, coordinate j) is
// Σ_{k<i} numel(x_k) + b·n_i + j, so a per-tensor-per-problem block is a contiguous [B, n_i] reshape.
//
// to_rows(xs): every x [B, ...] flattened and concatenated, [R].
at::Tensor to_rows(const TensorList& xs);
// to_rows(xs, width): every x [B, ..., width] (a state with `width` values per coordinate), [R, width].
at::Tensor to_rows(const TensorList& xs, int64_t width);
// Inverse of to_rows: splits [R] (width 0) or [R, width] rows into tensors shaped like `like` ([B, ...]), with a
// trailing `width` dimension when width > 0.
TensorList from_rows(const at::Tensor& rows, const TensorList& like, int64_t width = 0);
// Sum of per-row values [R] over each problem's coordinates (all tensors), [B].
at::Tensor per_problem_row_sum(const at::Tensor& rows, const TensorList& like);
// Divides a row vector [R] by its Euclidean norm taken per tensor per problem (docs/methods.md §1.4 `norm`): a block
// whose norm is zero stays zero, a 1-element block becomes ±1.
at::Tensor normalise_per_tensor(const at::Tensor& rows, const TensorList& like);

// Default LibTorch initialisation of a weight or bias: U(−bound, bound), drawn in float64 from `generator` (so
// float32 and float64 optimizers built from the same seed hold the same values up to rounding).
at::Tensor uniform_weight(at::IntArrayRef shape, double bound, at::Generator& generator, at::ScalarType dtype);
// "float32" | "float64" -> scalar type; `field` names the option in the error.
at::ScalarType parse_weight_dtype(const std::string& field, const std::string& value);
// The same as an options check (option_spec.hpp).
inline void check_weight_dtype(const std::string& field, const std::string& value) { parse_weight_dtype(field, value); }
std::string weight_dtype_name(at::ScalarType dtype);

// Named weights held by an optimizer: the fixed order, the names, the checked replacement.
class WeightSet {
 public:
  WeightSet() = default;
  WeightSet(std::string owner, at::ScalarType dtype) : owner_(std::move(owner)), dtype_(dtype) {}
  // Appends a weight; returns its index.
  std::size_t add(const std::string& name, at::Tensor value);
  const TensorList& values() const { return values_; }
  const std::vector<std::string>& names() const { return names_; }
  const at::Tensor& operator[](std::size_t i) const { return values_[i]; }
  // Checks count and shapes (naming the first mismatch) and stores the tensors converted to the dtype.
  void assign(const TensorList& values);
  // Whether any weight requires grad (meta-training mode).
  bool any_requires_grad() const;
  // The weights converted to `options` (dtype and device): differentiable, a no-op when they already match.
  TensorList on(const at::TensorOptions& options) const;
  at::ScalarType dtype() const { return dtype_; }

 private:
  std::string owner_;
  at::ScalarType dtype_ = at::kFloat;
  TensorList values_;
  std::vector<std::string> names_;
};

// The dtype a learned update computes in: promote(weight dtype, dtype of the parameters).
at::ScalarType compute_dtype(at::ScalarType weights, const TensorList& params);

// Holds `replacement` as the optimizer's weights for its lifetime and puts the original weight tensors back
// however the scope ends (also by an exception): meta-training differentiates with respect to those very tensors,
// and estimators that evaluate perturbed weights (es, pes) or re-run a step (recompute) must leave them in place.
class WeightSwap {
 public:
  WeightSwap(LearnedOptimizer& optimizer, const TensorList& replacement)
      : optimizer_(optimizer), original_(optimizer.weights()) {
    optimizer_.set_weights(replacement);
  }
  ~WeightSwap() { optimizer_.set_weights(original_); }
  WeightSwap(const WeightSwap&) = delete;
  WeightSwap& operator=(const WeightSwap&) = delete;

 private:
  LearnedOptimizer& optimizer_;
  TensorList original_;
};

// The shared part of a learned optimizer configured by an options struct with a spec() (core/option_spec.hpp), a
// `dtype` and an `out_mul` field: it validates and keeps the options, holds the named weights in that dtype, and
// takes its registry name from the spec's owner ("lstm"). Subclasses add their weights in their constructor.
template <typename Options>
class ConfiguredLearnedOptimizer : public LearnedOptimizer {
 public:
  explicit ConfiguredLearnedOptimizer(Options options)
      : options_(validated(std::move(options))),
        weights_(Options::spec().owner(), parse_weight_dtype(Options::spec().owner() + ".dtype", options_.dtype)) {}
  std::string name() const override { return Options::spec().owner(); }
  OptionMap options() const override { return options_.to_map(); }
  double learning_rate() const override { return options_.out_mul; }
  TensorList weights() const override { return weights_.values(); }
  std::vector<std::string> weight_names() const override { return weights_.names(); }
  void set_weights(const TensorList& weights) override { weights_.assign(weights); }
  const Options& settings() const { return options_; }

 protected:
  Options options_;
  WeightSet weights_;
};

}  // namespace hamlet::learned
