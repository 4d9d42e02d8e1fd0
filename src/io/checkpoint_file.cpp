#include "hamlet/io/checkpoint_file.hpp"

#include "hamlet/core/error.hpp"
#include "hamlet/io/h5.hpp"
#include "hamlet/io/schema.hpp"

namespace hamlet::io {
namespace {

constexpr const char* kKind = "checkpoint";

void write_list(H5Writer& w, const std::string& group, const TensorList& xs) {
  w.set_attribute(group, "count", static_cast<int64_t>(xs.size()));
  for (std::size_t i = 0; i < xs.size(); ++i) w.write(group + "/" + std::to_string(i), xs[i]);
}

TensorList read_list(const H5Reader& r, const std::string& group) {
  TensorList out;
  const int64_t n = r.attribute_int(group, "count");
  for (int64_t i = 0; i < n; ++i) out.push_back(r.read(group + "/" + std::to_string(i)));
  return out;
}

// Version 0 checkpoints written before the undefined-steps column have 7 columns; the column is 0 there.
at::Tensor read_curve(const H5Reader& r, int64_t version) {
  at::Tensor curve = r.read("/curve");
  if (version == 0 && curve.dim() == 2 && curve.size(1) == kCheckpointCurveColumns - 1) {
    curve = at::cat({curve.to(at::kDouble), at::zeros({curve.size(0), 1}, at::kDouble)}, 1);
  }
  return curve;
}

void read_meta_state(const H5Reader& r, CheckpointRecord& c) {
  c.meta_step = r.attribute_int("/meta_state", "step");
  if (r.exists("/meta_state/slots")) {
    for (const auto& name : r.children("/meta_state/slots")) c.meta_slots[name] = read_list(r, "/meta_state/slots/" + name);
  }
  if (r.exists("/meta_state/scalars")) {
    for (const auto& name : r.children("/meta_state/scalars")) c.meta_scalars[name] = r.read("/meta_state/scalars/" + name);
  }
}

}  // namespace

void write_checkpoint(const std::string& path, const CheckpointRecord& c) {
  H5Writer w(path);
  write_schema_version(w, kCheckpointSchema);
  write_list(w, "/weights", c.weights);
  write_list(w, "/best_weights", c.best_weights);
  w.set_attribute("/meta_state", "step", c.meta_step);
  for (const auto& [name, list] : c.meta_slots) write_list(w, "/meta_state/slots/" + name, list);
  for (const auto& [name, value] : c.meta_scalars) w.write("/meta_state/scalars/" + name, value);
  w.write("/curve", c.curve.reshape({-1, kCheckpointCurveColumns}));
  if (c.component_scores.defined()) w.write("/component_scores", c.component_scores.to(at::kDouble));
  w.set_attribute("/", "epoch", c.epoch);
  w.set_attribute("/", "best_score", c.best_score);
  w.set_attribute("/", "best_epoch", c.best_epoch);
  w.set_attribute("/", "initial_score", c.initial_score);
  w.set_attribute("/", "meta_steps", c.meta_steps);
  w.set_attribute("/", "skipped_steps", c.skipped_steps);
  w.set_attribute("/", "cut_trajectories", c.cut_trajectories);
  w.set_attribute("/", "architecture", c.architecture);
  w.set_attribute("/", "config", c.config);
  w.commit();
}

CheckpointRecord read_checkpoint(const std::string& path) {
  const H5Reader r(path);
  HAMLET_CHECK(r.exists("/weights") && r.exists("/meta_state"), path, ": not a hamlet meta-training checkpoint");
  CheckpointRecord c;
  c.schema_version = read_schema_version(r, kKind, kCheckpointSchema);
  check_content(r, kKind, c.schema_version, /*warn_unchecked=*/true);
  c.weights = read_list(r, "/weights");
  c.best_weights = read_list(r, "/best_weights");
  read_meta_state(r, c);
  c.curve = read_curve(r, c.schema_version);
  if (r.exists("/component_scores")) c.component_scores = r.read("/component_scores").to(at::kDouble);
  c.epoch = r.attribute_int("/", "epoch");
  c.best_score = r.attribute_double("/", "best_score");
  c.best_epoch = r.attribute_int("/", "best_epoch");
  c.initial_score = r.attribute_double("/", "initial_score");
  c.meta_steps = r.attribute_int("/", "meta_steps");
  c.skipped_steps = r.attribute_int("/", "skipped_steps");
  c.cut_trajectories = r.attribute_int("/", "cut_trajectories");
  c.architecture = r.attribute_string("/", "architecture");
  c.config = r.attribute_string("/", "config");
  return c;
}

}  // namespace hamlet::io
