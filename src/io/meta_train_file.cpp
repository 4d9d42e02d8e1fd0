#include "hamlet/io/meta_train_file.hpp"

#include "hamlet/core/error.hpp"
#include "hamlet/core/options_json.hpp"
#include "hamlet/io/h5.hpp"
#include "hamlet/io/schema.hpp"
#include "run_file_parts.hpp"

namespace hamlet::io {
namespace {

constexpr const char* kKind = "meta-training run file";
constexpr int64_t kCurveColumns = 8;

void write_summary(H5Writer& w, const MetaTrainRunRecord& m) {
  w.set_attribute("/meta_train", "initial_score", m.initial_score);
  w.set_attribute("/meta_train", "best_score", m.best_score);
  w.set_attribute("/meta_train", "best_epoch", m.best_epoch);
  w.set_attribute("/meta_train", "meta_steps", m.meta_steps);
  w.set_attribute("/meta_train", "skipped_steps", m.skipped_steps);
  w.set_attribute("/meta_train", "cut_trajectories", m.cut_trajectories);
  w.set_attribute("/meta_train", "undefined_steps", m.undefined_steps);
  w.set_attribute("/meta_train", "optimizee_steps", m.optimizee_steps);
  w.set_attribute("/meta_train", "train_seconds", m.train_seconds);
  w.set_attribute("/meta_train", "seconds", m.seconds);
  w.set_attribute("/meta_train", "ranks", m.ranks);
}

// The first files lack the later counters (0 there) and ranks (they ran on one).
void read_summary(const H5Reader& r, MetaTrainRunRecord& m) {
  const auto number = [&r](const char* name, double fallback) {
    return r.has_attribute("/meta_train", name) ? r.attribute_double("/meta_train", name) : fallback;
  };
  const auto count = [&r](const char* name, int64_t fallback) {
    return r.has_attribute("/meta_train", name) ? r.attribute_int("/meta_train", name) : fallback;
  };
  m.initial_score = r.attribute_double("/meta_train", "initial_score");
  m.best_score = r.attribute_double("/meta_train", "best_score");
  m.best_epoch = r.attribute_int("/meta_train", "best_epoch");
  m.meta_steps = r.attribute_int("/meta_train", "meta_steps");
  m.skipped_steps = count("skipped_steps", 0);
  m.cut_trajectories = count("cut_trajectories", 0);
  m.undefined_steps = count("undefined_steps", 0);
  m.optimizee_steps = count("optimizee_steps", 0);
  m.train_seconds = number("train_seconds", 0);
  m.seconds = number("seconds", 0);
  m.ranks = count("ranks", 1);
}

// Version 0 curves written before the undefined-steps column have 7 columns; the column is 0 there.
at::Tensor read_curve(const H5Reader& r, int64_t version) {
  at::Tensor curve = r.read("/meta_train/curve").to(at::kDouble);
  if (version == 0 && curve.dim() == 2 && curve.size(1) == kCurveColumns - 1) {
    curve = at::cat({curve, at::zeros({curve.size(0), 1}, at::kDouble)}, 1);
  }
  return curve;
}

}  // namespace

void write_record(H5Writer& w, const MetaTrainRunRecord& m) {
  write_run_header(w, m.header, kMetaTrainFileSchema);
  w.set_attribute("/", "optimizer", m.optimizer);
  w.set_attribute("/", "architecture", m.architecture);
  w.set_attribute("/", "optimizer_options", options_to_json(m.optimizer_options));
  w.set_attribute("/", "num_params", m.num_params);
  w.set_attribute("/", "weights_file", m.weights_file);
  w.write("/meta_train/curve", m.curve.reshape({-1, kCurveColumns}));
  w.set_attribute("/meta_train/curve", "columns", kMetaTrainCurveColumns);
  if (m.component_scores.defined()) {
    HAMLET_CHECK(m.component_scores.dim() == 2 &&
                     m.component_scores.size(1) == static_cast<int64_t>(m.component_names.size()),
                 "meta-training run file: component_scores ", m.component_scores.sizes(), " do not match ",
                 m.component_names.size(), " component names");
    w.write("/meta_train/component_scores", m.component_scores.to(at::kDouble));
    w.write_strings("/meta_train/component_names", m.component_names);
  }
  write_summary(w, m);
}

template class RecordFileWriter<MetaTrainRunRecord>;

MetaTrainRunRecord read_meta_train_run(const std::string& path) {
  const H5Reader r(path);
  auto m = read_run_start<MetaTrainRunRecord>(r, kKind, "/meta_train/curve", kMetaTrainFileSchema);
  m.optimizer = r.attribute_string("/", "optimizer");
  m.architecture = r.attribute_string("/", "architecture");
  m.optimizer_options =
      read_options_text(r.attribute_string("/", "optimizer_options"), m.schema_version, path + " optimizer_options");
  m.num_params = r.attribute_int("/", "num_params");
  m.weights_file = r.attribute_string("/", "weights_file");
  m.curve = read_curve(r, m.schema_version);
  if (r.exists("/meta_train/component_scores")) {
    m.component_scores = r.read("/meta_train/component_scores").to(at::kDouble);
    m.component_names = r.read_strings("/meta_train/component_names");
  }
  read_summary(r, m);
  return m;
}

}  // namespace hamlet::io
