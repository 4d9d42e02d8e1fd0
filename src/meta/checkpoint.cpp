#include "hamlet/meta/checkpoint.hpp"

#include <cmath>
#include <limits>

#include "hamlet/core/error.hpp"
#include "hamlet/io/checkpoint_file.hpp"

namespace hamlet::meta {
namespace {

constexpr int64_t kCurveColumns = io::kCheckpointCurveColumns;

// A count column of a stored curve (epoch, skipped, cut and undefined steps) back to an integer. The curve is float64,
// which holds every count exactly up to 2^53; anything else (NaN, negative, fractional, 1e300) is a damaged file, and
// converting it to int64 unchecked would be undefined behaviour.
int64_t count_from_curve(double value, int64_t row, const char* column) {
  HAMLET_CHECK(std::isfinite(value) && value >= 0 && value <= 9007199254740992.0 && value == std::floor(value),
               "meta-training curve row ", row, ": ", column, " is ", value, ", not a count");
  return static_cast<int64_t>(value);
}

}  // namespace

at::Tensor curve_to_tensor(const std::vector<EpochRecord>& curve) {
  at::Tensor out = at::zeros({static_cast<int64_t>(curve.size()), kCurveColumns}, at::kDouble);
  auto a = out.accessor<double, 2>();
  for (std::size_t i = 0; i < curve.size(); ++i) {
    const auto& e = curve[i];
    const double row[kCurveColumns] = {static_cast<double>(e.epoch), e.train_meta_loss, e.validation_score,
                                       e.grad_norm, static_cast<double>(e.skipped_steps),
                                       static_cast<double>(e.cut_trajectories), e.seconds,
                                       static_cast<double>(e.undefined_steps)};
    for (int64_t j = 0; j < kCurveColumns; ++j) a[static_cast<int64_t>(i)][j] = row[j];
  }
  return out;
}

std::vector<EpochRecord> curve_from_tensor(const at::Tensor& values) {
  std::vector<EpochRecord> out;
  if (values.numel() == 0) return out;
  HAMLET_CHECK(values.dim() == 2 && values.size(1) == kCurveColumns, "meta-training curve must be [epochs, ",
               kCurveColumns, "], got ", values.sizes());
  const at::Tensor v = values.to(at::kDouble).contiguous();
  auto a = v.accessor<double, 2>();
  for (int64_t i = 0; i < v.size(0); ++i) {
    EpochRecord e;
    e.epoch = count_from_curve(a[i][0], i, "epoch");
    e.train_meta_loss = a[i][1];
    e.validation_score = a[i][2];
    e.grad_norm = a[i][3];
    e.skipped_steps = count_from_curve(a[i][4], i, "skipped_steps");
    e.cut_trajectories = count_from_curve(a[i][5], i, "cut_trajectories");
    e.seconds = a[i][6];
    e.undefined_steps = count_from_curve(a[i][7], i, "undefined_steps");
    out.push_back(e);
  }
  return out;
}

at::Tensor component_scores_to_tensor(const std::vector<EpochRecord>& curve) {
  if (curve.empty() || curve.front().component_scores.empty()) return at::Tensor();
  const auto k = static_cast<int64_t>(curve.front().component_scores.size());
  at::Tensor out = at::zeros({static_cast<int64_t>(curve.size()), k}, at::kDouble);
  auto a = out.accessor<double, 2>();
  for (std::size_t i = 0; i < curve.size(); ++i) {
    const auto& scores = curve[i].component_scores;
    HAMLET_CHECK(static_cast<int64_t>(scores.size()) == k, "meta-training curve: epoch ", curve[i].epoch, " has ",
                 scores.size(), " component scores, the first epoch ", k);
    for (int64_t j = 0; j < k; ++j) a[static_cast<int64_t>(i)][j] = scores[static_cast<std::size_t>(j)];
  }
  return out;
}

void component_scores_from_tensor(const at::Tensor& scores, std::vector<EpochRecord>& curve) {
  if (!scores.defined() || scores.numel() == 0) return;
  HAMLET_CHECK(scores.dim() == 2 && scores.size(0) == static_cast<int64_t>(curve.size()),
               "component scores must be [epochs, components] with one row per epoch of the curve (",
               curve.size(), "), got ", scores.sizes());
  const at::Tensor v = scores.to(at::kDouble).contiguous();
  auto a = v.accessor<double, 2>();
  for (std::size_t i = 0; i < curve.size(); ++i) {
    curve[i].component_scores.assign(v.size(1), 0.0);
    for (int64_t j = 0; j < v.size(1); ++j) curve[i].component_scores[static_cast<std::size_t>(j)] = a[i][j];
  }
}

void save_checkpoint(const std::string& path, const Checkpoint& c) {
  io::CheckpointRecord r;
  r.epoch = c.epoch;
  r.weights = c.weights;
  r.best_weights = c.best_weights;
  r.meta_step = c.meta_state.step;
  r.meta_slots = c.meta_state.slots;
  r.meta_scalars = c.meta_state.scalars;
  r.curve = curve_to_tensor(c.progress.curve);
  r.component_scores = component_scores_to_tensor(c.progress.curve);
  r.best_score = c.progress.best_score;
  r.best_epoch = c.progress.best_epoch;
  r.initial_score = c.progress.initial_score;
  r.meta_steps = c.progress.meta_steps;
  r.skipped_steps = c.progress.skipped_steps;
  r.cut_trajectories = c.progress.cut_trajectories;
  r.architecture = c.architecture;
  r.config = c.config;
  io::write_checkpoint(path, r);
}

Checkpoint load_checkpoint(const std::string& path) {
  io::CheckpointRecord r = io::read_checkpoint(path);
  Checkpoint c;
  c.epoch = r.epoch;
  c.weights = std::move(r.weights);
  c.best_weights = std::move(r.best_weights);
  c.meta_state.step = r.meta_step;
  c.meta_state.slots = std::move(r.meta_slots);
  c.meta_state.scalars = std::move(r.meta_scalars);
  try {
    c.progress.curve = curve_from_tensor(r.curve);
    component_scores_from_tensor(r.component_scores, c.progress.curve);
  } catch (const Error& e) {
    throw Error(path + ": " + e.what());
  }
  c.progress.best_score = r.best_score;
  c.progress.best_epoch = r.best_epoch;
  c.progress.initial_score = r.initial_score;
  c.progress.meta_steps = r.meta_steps;
  c.progress.skipped_steps = r.skipped_steps;
  c.progress.cut_trajectories = r.cut_trajectories;
  c.architecture = std::move(r.architecture);
  c.config = std::move(r.config);
  c.progress.best_weights = c.best_weights;
  for (const auto& e : c.progress.curve) {
    HAMLET_CHECK(c.progress.undefined_steps <= std::numeric_limits<int64_t>::max() - e.undefined_steps, path,
                 ": the curve's undefined_steps do not sum to a count");
    c.progress.undefined_steps += e.undefined_steps;
  }
  return c;
}

}  // namespace hamlet::meta
