#include "hamlet/eval/run_set.hpp"

#include <algorithm>
#include <filesystem>
#include <set>

#include "hamlet/core/error.hpp"
#include "hamlet/io/run_file.hpp"
#include "hamlet/io/weights_file.hpp"
#include "hamlet/tasks/task.hpp"

namespace hamlet::eval {
namespace {

namespace fs = std::filesystem;

// The protocol keys of a meta-training configuration worth a table cell: the budget and the estimator.
const std::vector<std::string> kMetaKeys = {"estimator", "epochs", "trajectories", "batch", "unroll", "horizon",
                                            "meta_lr"};
// A weight file named in the options; else the same file name in the weights/ directory next to the run's
// directory (the layout of experiments/paper); else the longest tail of the recorded path (two components or more)
// found under a directory above the run file (an absolute path recorded in another clone, e.g.
// /elsewhere/results/paper/full/weights/x.h5 read from this clone's results/paper/tuned/). Empty if none exists.
std::string locate_weights(const std::string& recorded, const std::string& run_file) {
  std::error_code ec;
  if (fs::is_regular_file(recorded, ec)) return recorded;
  const fs::path sibling = fs::path(run_file).parent_path().parent_path() / "weights" / fs::path(recorded).filename();
  if (fs::is_regular_file(sibling, ec)) return sibling.string();
  std::vector<fs::path> parts;
  for (const auto& part : fs::path(recorded).relative_path()) parts.push_back(part);
  for (std::size_t first = 0; first + 2 <= parts.size(); ++first) {
    fs::path tail;
    for (std::size_t k = first; k < parts.size(); ++k) tail /= parts[k];
    for (fs::path dir = fs::absolute(run_file, ec).parent_path(); !dir.empty(); dir = dir.parent_path()) {
      if (fs::is_regular_file(dir / tail, ec)) return (dir / tail).string();
      if (dir == dir.parent_path()) break;
    }
  }
  return "";
}

// The weight file a learned row's options name, located by locate_weights; empty when the options name none or the
// file is not found.
std::string weight_file_of(const OptionMap& options, const std::string& run_file) {
  const auto w = options.find("weights");
  return w == options.end() ? "" : locate_weights(w->second, run_file);
}

// The meta-training protocol recorded in a located weight file (empty path: nothing known).
OptionMap read_protocol(const std::string& path) {
  OptionMap protocol;
  if (path.empty()) return protocol;
  const io::WeightsRecord weights = io::read_weights(path, io::WeightsPart::kProvenance);
  if (!weights.provenance.count("meta_train")) return protocol;
  const OptionMap meta = io::provenance_options(weights, "meta_train");
  for (const auto& key : kMetaKeys) {
    const auto it = meta.find(key);
    if (it != meta.end()) protocol[key] = it->second;
  }
  // Older weight files lack the counters: the cell shows "?" for them.
  for (const char* counter : {"cut_trajectories", "skipped_steps"}) {
    const auto it = weights.provenance.find(counter);
    if (it != weights.provenance.end()) protocol[counter] = it->second;
  }
  return protocol;
}

}  // namespace

RunInput parse_run_input(const std::string& text) {
  const auto colon = text.rfind(':');
  if (colon == std::string::npos) return {text, ""};
  RunInput in{text.substr(0, colon), text.substr(colon + 1)};
  HAMLET_CHECK(!in.path.empty(), "compare --in='", text, "': no file before the label (write --in=FILE:LABEL)");
  return in;
}

std::string row_name(const std::string& label, const std::string& method) {
  if (label.empty()) return method;
  const std::string placeholder = "{method}";
  std::string out = label;
  for (auto at = out.find(placeholder); at != std::string::npos; at = out.find(placeholder, at + method.size())) {
    out.replace(at, placeholder.size(), method);
  }
  return out;
}

namespace {

// Task options that say where the data lay on the machine that wrote the file, not which problems it holds.

// The problem-defining attributes of a run file (no methods).
RunSet problem_set(const io::RunRecord& run) {
  RunSet h;
  h.task = run.header.task;
  h.split = run.split;
  h.problem_seed = run.seed;
  h.problems = run.problems;
  h.steps = run.steps;
  h.task_options = run.header.task_options;
  for (auto it = h.task_options.begin(); it != h.task_options.end();) {
    it = tasks::is_data_location_option(it->first) ? h.task_options.erase(it) : std::next(it);
  }
  return h;
}

// The settings that define a run's problems, in the order a message names them.
std::vector<std::pair<std::string, std::string>> problem_identity(const RunSet& s) {
  std::vector<std::pair<std::string, std::string>> out = {{"task", s.task}};
  for (const auto& [key, value] : s.task_options) out.emplace_back("task option " + key, value);
  out.emplace_back("split", s.split);
  out.emplace_back("problem seed", std::to_string(s.problem_seed));
  out.emplace_back("number of problems", std::to_string(s.problems));
  out.emplace_back("number of steps", std::to_string(s.steps));
  return out;
}

}  // namespace

void check_same_problems(const RunSet& a, const std::string& a_path, const RunSet& b, const std::string& b_path) {
  const auto ida = problem_identity(a), idb = problem_identity(b);
  const std::map<std::string, std::string> in_a(ida.begin(), ida.end()), in_b(idb.begin(), idb.end());
  const auto value_in = [](const std::map<std::string, std::string>& m, const std::string& key) {
    const auto it = m.find(key);
    return it == m.end() ? std::string("(not set)") : "'" + it->second + "'";
  };
  // The task first: other tasks have other options, and the task's name says more than their first difference.
  std::vector<std::string> keys;
  for (const auto& [key, value] : ida) keys.push_back(key);
  for (const auto& [key, value] : idb) {
    if (!in_a.count(key)) keys.push_back(key);
  }
  for (const auto& key : keys) {
    const std::string va = value_in(in_a, key), vb = value_in(in_b, key);
    HAMLET_CHECK(va == vb, b_path, ": ", key, " is ", vb, " but ", a_path, " has ", va,
                 "; compare pairs problems by index, so every file must hold the same problems");
  }
}

RunSet read_runs(const std::vector<std::string>& paths) {
  std::vector<RunInput> inputs;
  for (const auto& p : paths) inputs.push_back({p, ""});
  return read_runs(inputs);
}

RunSet read_runs(const std::vector<RunInput>& inputs) {
  HAMLET_CHECK(!inputs.empty(), "compare: no run files given (--in=RUN.h5, repeatable)");
  std::vector<std::string> paths;
  for (const auto& in : inputs) paths.push_back(in.path);
  RunSet set;
  std::map<std::string, std::size_t> index;
  std::map<std::string, std::vector<at::Tensor>> finals, means, firsts;
  for (std::size_t f = 0; f < paths.size(); ++f) {
    const std::string& path = paths[f];
    const std::string& label = inputs[f].label;
    const io::RunRecord run = io::read_run(path);
    const RunSet header = problem_set(run);
    if (f == 0) {
      set = header;
    } else {
      check_same_problems(set, paths[0], header, path);
    }
    const int64_t problems = header.problems, steps = header.steps;
    // The loss at the first and the last logged step is what compare reads: a file without both is no run.
    HAMLET_CHECK(problems > 0 && steps > 0, path, ": records ", problems, " problems and ", steps,
                 " steps; a run file holds at least one of each");
    std::set<std::string> in_this_file;
    if (!label.empty() && label.find("{method}") == std::string::npos) {
      std::string list;
      for (const auto& m : run.methods) list += (list.empty() ? "" : ", ") + m.name;
      HAMLET_CHECK(run.methods.size() == 1, path, ": the label '", label, "' names one row but the file holds ",
                   run.methods.size(), " methods (", list, "); put {method} in the label, e.g. '{method} ", label,
                   "'");
    }
    for (const io::MethodRecord& method : run.methods) {
      const std::string name = row_name(label, method.name);
      HAMLET_CHECK(in_this_file.insert(name).second, path, ": method '", name, "' appears twice");
      const std::string group = "/methods/" + method.name;
      HAMLET_CHECK(method.evaluated(), path, ": no dataset ", group, "/loss (a tune file holds no runs)");
      const at::Tensor& loss = method.loss;
      HAMLET_CHECK(loss.dim() == 2 && loss.size(0) == problems && loss.size(1) == steps, path, ": ", group,
                   "/loss has shape ", loss.sizes(), ", expected [", problems, ", ", steps, "]");
      if (!index.count(name)) {
        index[name] = set.methods.size();
        set.methods.push_back(MethodRuns{});
        set.methods.back().name = name;
      }
      MethodRuns& m = set.methods[index[name]];
      m.files.push_back(path);
      const OptionMap& options = method.options;
      m.options.push_back(options);
      m.learned = options.count("out_mul") && !options.count("lr");
      if (method.tune) m.validation_score = method.tune->best_score;
      if (m.learned) {
        m.weights.push_back(weight_file_of(options, path));  // located once, for the protocol and the seed pairing
        m.seed_protocols.push_back(read_protocol(m.weights.back()));
        if (m.protocol.empty()) m.protocol = m.seed_protocols.back();
      }
      finals[name].push_back(loss.select(1, steps - 1));
      firsts[name].push_back(loss.select(1, 0));
      means[name].push_back(loss.mean(1));
    }
  }
  for (auto& m : set.methods) {
    HAMLET_CHECK(m.learned || m.files.size() == 1, "compare: hand-designed method '", m.name, "' appears in ",
                 m.files.size(), " files (", m.files[0], ", ", m.files[1],
                 "); only learned optimizers have meta-training seeds (a label, --in=FILE:LABEL, makes other rows)");
    m.final_loss = at::stack(finals[m.name]);
    m.mean_over_steps = at::stack(means[m.name]);
    m.first_loss = at::stack(firsts[m.name]);
  }
  return set;
}

}  // namespace hamlet::eval
