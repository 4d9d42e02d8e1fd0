#include "hamlet/meta/checkpoint.hpp"

#include <cmath>
#include <limits>

#include "hamlet/core/error.hpp"
#include "hamlet/io/h5.hpp"

namespace hamlet::meta {
namespace {

constexpr int64_t kCurveColumns = 8;

void write_list(io::H5Writer& w, const std::string& group, const TensorList& xs) {
  w.set_attribute(group, "count", static_cast<int64_t>(xs.size()));
  for (std::size_t i = 0; i < xs.size(); ++i) w.write(group + "/" + std::to_string(i), xs[i]);
}

TensorList read_list(const io::H5Reader& r, const std::string& group) {
  TensorList out;
  const int64_t n = r.attribute_int(group, "count");
  for (int64_t i = 0; i < n; ++i) out.push_back(r.read(group + "/" + std::to_string(i)));
  return out;
}

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
  // Checkpoints written before the undefined-steps column have 7 columns.
  HAMLET_CHECK(values.dim() == 2 && (values.size(1) == kCurveColumns || values.size(1) == kCurveColumns - 1),
               "meta-training curve must be [epochs, ", kCurveColumns, "], got ", values.sizes());
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
    e.undefined_steps = v.size(1) > 7 ? count_from_curve(a[i][7], i, "undefined_steps") : 0;
    out.push_back(e);
  }
  return out;
}

void save_checkpoint(const std::string& path, const Checkpoint& c) {
  io::H5Writer w(path);
  write_list(w, "/weights", c.weights);
  write_list(w, "/best_weights", c.best_weights);
  w.set_attribute("/meta_state", "step", c.meta_state.step);
  for (const auto& [name, list] : c.meta_state.slots) write_list(w, "/meta_state/slots/" + name, list);
  for (const auto& [name, value] : c.meta_state.scalars) w.write("/meta_state/scalars/" + name, value);
  w.write("/curve", curve_to_tensor(c.progress.curve).reshape({-1, kCurveColumns}));
  w.set_attribute("/", "epoch", c.epoch);
  w.set_attribute("/", "best_score", c.progress.best_score);
  w.set_attribute("/", "best_epoch", c.progress.best_epoch);
  w.set_attribute("/", "initial_score", c.progress.initial_score);
  w.set_attribute("/", "meta_steps", c.progress.meta_steps);
  w.set_attribute("/", "skipped_steps", c.progress.skipped_steps);
  w.set_attribute("/", "cut_trajectories", c.progress.cut_trajectories);
  w.set_attribute("/", "architecture", c.architecture);
  w.set_attribute("/", "config", c.config);
  w.commit();
}

Checkpoint load_checkpoint(const std::string& path) {
  io::H5Reader r(path);
  HAMLET_CHECK(r.exists("/weights") && r.exists("/meta_state"), path, ": not a hamlet meta-training checkpoint");
  r.check_integrity("checkpoint");
  Checkpoint c;
  c.weights = read_list(r, "/weights");
  c.best_weights = read_list(r, "/best_weights");
  c.meta_state.step = r.attribute_int("/meta_state", "step");
  if (r.exists("/meta_state/slots")) {
    for (const auto& name : r.children("/meta_state/slots")) {
      c.meta_state.slots[name] = read_list(r, "/meta_state/slots/" + name);
    }
  }
  if (r.exists("/meta_state/scalars")) {
    for (const auto& name : r.children("/meta_state/scalars")) {
      c.meta_state.scalars[name] = r.read("/meta_state/scalars/" + name);
    }
  }
  try {
    c.progress.curve = curve_from_tensor(r.read("/curve"));
  } catch (const Error& e) {
    throw Error(path + ": " + e.what());
  }
  c.epoch = r.attribute_int("/", "epoch");
  c.progress.best_score = r.attribute_double("/", "best_score");
  c.progress.best_epoch = r.attribute_int("/", "best_epoch");
  c.progress.initial_score = r.attribute_double("/", "initial_score");
  c.progress.meta_steps = r.attribute_int("/", "meta_steps");
  c.progress.skipped_steps = r.attribute_int("/", "skipped_steps");
  c.progress.cut_trajectories = r.attribute_int("/", "cut_trajectories");
  c.architecture = r.attribute_string("/", "architecture");
  c.config = r.attribute_string("/", "config");
  c.progress.best_weights = c.best_weights;
  for (const auto& e : c.progress.curve) {
    HAMLET_CHECK(c.progress.undefined_steps <= std::numeric_limits<int64_t>::max() - e.undefined_steps, path,
                 ": the curve's undefined_steps do not sum to a count");
    c.progress.undefined_steps += e.undefined_steps;
  }
  return c;
}

}  // namespace hamlet::meta
