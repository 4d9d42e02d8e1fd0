#include "hamlet/io/run_file.hpp"

#include "hamlet/core/error.hpp"
#include "hamlet/core/options_json.hpp"
#include "hamlet/io/h5.hpp"
#include "hamlet/io/schema.hpp"
#include "run_file_parts.hpp"

namespace hamlet::io {
namespace {

constexpr const char* kKind = "run file";

void write_tune(H5Writer& w, const std::string& group, const TuneRecord& t) {
  w.write(group + "/tune/grid", at::tensor(t.grid, at::kDouble));
  w.write(group + "/tune/score", at::tensor(t.scores, at::kDouble));
  w.set_attribute(group + "/tune", "best_lr", t.best_lr);
  w.set_attribute(group + "/tune", "best_score", t.best_score);
  w.set_attribute(group + "/tune", "criterion", t.criterion);
}

void write_evaluated(H5Writer& w, const std::string& group, const MethodRecord& m) {
  w.write(group + "/loss", m.loss);
  // Undefined curves are left out, as the reader leaves out missing ones.
  for (const auto& [name, tensor] : {std::pair{"final_loss", &m.final_loss}, std::pair{"grad_norm", &m.grad_norm},
                                     std::pair{"update_norm", &m.update_norm}}) {
    if (tensor->defined()) w.write(group + "/" + name, *tensor);
  }
  for (const auto& [name, values] : m.diagnostics) w.write(group + "/diagnostics/" + name, values);
  w.set_attribute(group, "method", m.name);
  w.set_attribute(group, "options", options_to_json(m.options));
  w.set_attribute(group, "seconds", m.seconds);
  w.set_attribute(group, "final_mean", m.final_mean);
  w.set_attribute(group, "final_se", m.final_se);
  w.set_attribute(group, "final_median", m.final_median);
  w.set_attribute(group, "mean_over_steps", m.mean_over_steps);
  w.set_attribute(group, "mean_over_steps_se", m.mean_over_steps_se);
  w.set_attribute(group, "non_finite", m.non_finite);
  if (m.random_init) w.set_attribute(group, "random_init", "true");
}

void write_method(H5Writer& w, const MethodRecord& m) {
  const std::string group = "/methods/" + m.name;
  if (m.evaluated()) write_evaluated(w, group, m);
  if (m.tune) write_tune(w, group, *m.tune);
}

std::vector<double> to_vector(const at::Tensor& t) {
  const at::Tensor v = t.to(at::kDouble).contiguous().view(-1);
  return std::vector<double>(v.data_ptr<double>(), v.data_ptr<double>() + v.numel());
}

at::Tensor read_double(const H5Reader& r, const std::string& path) { return r.read(path).to(at::kDouble); }

// best_score is what compare reads; the rest is optional for the same reason as below.
TuneRecord read_tune(const H5Reader& r, const std::string& group) {
  TuneRecord t;
  if (r.exists(group + "/grid")) t.grid = to_vector(read_double(r, group + "/grid"));
  if (r.exists(group + "/score")) t.scores = to_vector(read_double(r, group + "/score"));
  if (r.has_attribute(group, "best_lr")) t.best_lr = r.attribute_double(group, "best_lr");
  t.best_score = r.attribute_double(group, "best_score");
  if (r.has_attribute(group, "criterion")) t.criterion = r.attribute_string(group, "criterion");
  return t;
}

// Only the loss and the options are required: compare reads nothing else, and hand-made files (tests, other tools)
// carry no more.
void read_evaluated(const H5Reader& r, const std::string& group, int64_t version, MethodRecord& m) {
  m.loss = read_double(r, group + "/loss");
  m.options = read_options_text(r.attribute_string(group, "options"), version, r.path() + " " + group);
  for (auto [name, tensor] : {std::pair{"final_loss", &m.final_loss}, std::pair{"grad_norm", &m.grad_norm},
                              std::pair{"update_norm", &m.update_norm}}) {
    if (r.exists(group + "/" + name)) *tensor = read_double(r, group + "/" + name);
  }
  if (r.exists(group + "/diagnostics")) {
    for (const auto& name : r.children(group + "/diagnostics")) {
      m.diagnostics[name] = read_double(r, group + "/diagnostics/" + name);
    }
  }
  for (auto [name, value] : {std::pair{"seconds", &m.seconds}, std::pair{"final_mean", &m.final_mean},
                             std::pair{"final_se", &m.final_se}, std::pair{"final_median", &m.final_median},
                             std::pair{"mean_over_steps", &m.mean_over_steps},
                             std::pair{"mean_over_steps_se", &m.mean_over_steps_se}}) {
    if (r.has_attribute(group, name)) *value = r.attribute_double(group, name);
  }
  if (r.has_attribute(group, "non_finite")) m.non_finite = r.attribute_int(group, "non_finite");
  m.random_init = r.has_attribute(group, "random_init") && r.attribute_string(group, "random_init") == "true";
}

MethodRecord read_method(const H5Reader& r, const std::string& name, int64_t version) {
  const std::string group = "/methods/" + name;
  HAMLET_CHECK(r.exists(group), r.path(), ": method '", name, "' is listed in /method_names but has no ", group);
  MethodRecord m;
  m.name = name;
  if (r.exists(group + "/loss")) read_evaluated(r, group, version, m);
  if (r.exists(group + "/tune")) m.tune = read_tune(r, group + "/tune");
  return m;
}

// Version 0 files of the first days have no /method_names; their methods are the groups, alphabetically.
std::vector<std::string> method_names(const H5Reader& r) {
  return r.exists("/method_names") ? r.read_strings("/method_names") : r.children("/methods");
}

}  // namespace

void write_run_header(H5Writer& w, const RunHeader& h, int64_t schema) {
  write_schema_version(w, schema);
  w.set_attribute("/", "hamlet_version", h.hamlet_version);
  w.set_attribute("/", "dependencies", h.dependencies);
  w.set_attribute("/", "kind", h.kind);
  w.set_attribute("/", "command", h.command);
  w.set_attribute("/", "config", h.config);
  w.set_attribute("/", "created_utc", h.created_utc);
  w.set_attribute("/", "task", h.task);
  w.set_attribute("/", "task_options", options_to_json(h.task_options));
}

RunHeader read_run_header(const H5Reader& r, int64_t version) {
  RunHeader h;
  // Only the attributes a reader needs are required; the descriptive ones may be missing from hand-made files.
  const auto text = [&r](const char* name) { return r.has_attribute("/", name) ? r.attribute_string("/", name) : ""; };
  h.kind = text("kind");
  h.hamlet_version = text("hamlet_version");
  h.dependencies = text("dependencies");
  h.command = text("command");
  h.config = text("config");
  h.created_utc = text("created_utc");
  h.task = r.attribute_string("/", "task");
  if (r.has_attribute("/", "task_options")) {
    h.task_options = read_options_text(r.attribute_string("/", "task_options"), version, r.path() + " task_options");
  }
  return h;
}

void write_record(H5Writer& w, const RunRecord& run) {
  write_run_header(w, run.header, kRunFileSchema);
  w.set_attribute("/", "split", run.split);
  w.set_attribute("/", "seed", run.seed);
  w.set_attribute("/", "problems", run.problems);
  w.set_attribute("/", "steps", run.steps);
  w.set_attribute("/", "device", run.device);
  if (run.tuned) w.set_attribute("/", "tuned", *run.tuned ? "true" : "false");
  if (!run.summary_table.empty()) w.set_attribute("/", "summary_table", run.summary_table);
  std::vector<std::string> names;
  for (const auto& m : run.methods) names.push_back(m.name);
  w.write_strings("/method_names", names);
  for (const auto& m : run.methods) write_method(w, m);
}

template class RecordFileWriter<RunRecord>;

RunRecord read_run(const std::string& path) {
  const H5Reader r(path);
  auto run = read_run_start<RunRecord>(r, kKind, "/methods", kRunFileSchema);
  run.split = r.attribute_string("/", "split");
  run.seed = r.attribute_int("/", "seed");
  run.problems = r.attribute_int("/", "problems");
  run.steps = r.attribute_int("/", "steps");
  if (r.has_attribute("/", "device")) run.device = r.attribute_string("/", "device");
  if (r.has_attribute("/", "tuned")) run.tuned = r.attribute_string("/", "tuned") == "true";
  if (r.has_attribute("/", "summary_table")) run.summary_table = r.attribute_string("/", "summary_table");
  for (const auto& name : method_names(r)) run.methods.push_back(read_method(r, name, run.schema_version));
  return run;
}

}  // namespace hamlet::io
