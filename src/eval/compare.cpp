#include "hamlet/eval/compare.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>

#include "hamlet/core/error.hpp"
#include "hamlet/io/run_file.hpp"
#include "hamlet/io/weights_file.hpp"

namespace hamlet::eval {
namespace {

namespace fs = std::filesystem;

std::string fmt(double v) {
  if (!std::isfinite(v)) return std::isnan(v) ? "nan" : (v > 0 ? "diverged" : "-inf");
  char buf[64];
  const double a = std::fabs(v);
  std::snprintf(buf, sizeof(buf), (a != 0 && (a < 1e-3 || a >= 1e4)) ? "%.3e" : "%.3f", v);
  return buf;
}

std::string fmt_signed(double v) {
  const std::string s = fmt(v);
  return std::isfinite(v) && v >= 0 ? "+" + s : s;
}

// The protocol keys of a meta-training configuration worth a table cell: the budget and the estimator.
const std::vector<std::string> kMetaKeys = {"estimator", "epochs", "trajectories", "batch", "unroll", "horizon",
                                            "meta_lr"};
// Optimizer options that define what a learned row is (its architecture and its scale live elsewhere).
const std::vector<std::string> kLearnedOptionKeys = {"mass", "dissipation", "hidden", "preprocess", "norm"};

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

bool same_file_contents(const std::string& a, const std::string& b) {
  if (a == b) return true;
  std::ifstream fa(a, std::ios::binary), fb(b, std::ios::binary);
  if (!fa || !fb) return false;
  return std::equal(std::istreambuf_iterator<char>(fa), std::istreambuf_iterator<char>(),
                    std::istreambuf_iterator<char>(fb), std::istreambuf_iterator<char>());
}

// Do two learned rows evaluate the same weights seed by seed? Then their seed effects cancel in the difference.
bool same_weights_per_seed(const MethodRuns& a, const MethodRuns& b) {
  if (!a.learned || !b.learned || a.weights.size() != b.weights.size() || a.weights.size() < 2) return false;
  for (std::size_t s = 0; s < a.weights.size(); ++s) {
    if (a.weights[s].empty() || !same_file_contents(a.weights[s], b.weights[s])) return false;
  }
  return true;
}

SeededMeanSe difference(const MethodRuns& a, const MethodRuns& b, bool& seed_paired) {
  seed_paired = same_weights_per_seed(a, b);
  return seed_paired ? seed_paired_difference(a.final_loss, b.final_loss) : seeded_difference(a.final_loss, b.final_loss);
}

std::string protocol_cell(const MethodRuns& m, const OptionMap& defaults) {
  std::string out;
  const auto add = [&out](const std::string& item) { out += (out.empty() ? "" : ", ") + item; };
  if (m.learned) {
    for (const auto& key : kLearnedOptionKeys) {
      const auto it = m.options.front().find(key);
      if (it != m.options.front().end()) add(key + "=" + it->second);
    }
    const auto& p = m.protocol;
    if (p.count("epochs") && p.count("trajectories")) {
      const int64_t budget = std::stoll(p.at("epochs")) * std::stoll(p.at("trajectories"));
      add("budget " + std::to_string(budget) + " trajectories");
    }
    for (const char* key : {"estimator", "unroll"}) {
      const auto known = p.find(key), predated = defaults.find(key);
      if (known != p.end()) {
        add(std::string(key) + "=" + known->second);
      } else if (!p.empty() && predated != defaults.end()) {
        add(std::string(key) + "=" + predated->second);
      }
    }
    // Knobs and counters that may differ between seeds: one value when they agree, else each seed's ("?" where a
    // weight file does not record it, e.g. cut trajectories before hamlet wrote them into weight files).
    for (const char* key : {"meta_lr", "cut_trajectories"}) {
      std::vector<std::string> values;
      bool known = false, same = true;
      for (const auto& sp : m.seed_protocols) {
        const auto it = sp.find(key);
        values.push_back(it == sp.end() ? "?" : it->second);
        known = known || it != sp.end();
        same = same && values.back() == values.front();
      }
      if (!known) continue;
      std::string text = values.front();
      if (!same) {
        text.clear();
        for (const auto& v : values) text += (text.empty() ? "" : " / ") + v;
      }
      add(std::string(key) + "=" + text);
    }
  }
  return out.empty() ? "—" : out;
}

std::string verdict_text(Verdict v) {
  switch (v) {
    case Verdict::kABetter: return "beats";
    case Verdict::kBBetter: return "loses";
    case Verdict::kTie: return "tie";
  }
  return "tie";
}

// "seeds" cell: the count, and a note when the SE is problem noise only.
std::string seeds_cell(const ComparisonRow& r) {
  if (!r.learned) return "—";
  if (r.final_loss.seeds == 1) return "1 (problem noise only)";
  std::string means;
  for (double m : r.seed_means) means += (means.empty() ? "" : " / ") + fmt(m);
  return std::to_string(r.final_loss.seeds) + ": " + means;
}

}  // namespace

const OptionSpec<CompareOptions>& CompareOptions::spec() {
  using O = CompareOptions;
  static const auto s =
      OptionSpec<O>("compare")
          .add("reference", &O::reference,
               "Δ reference: 'validation' (the hand-designed optimizer with the best validation score) or a method name",
               [](const std::string& field, const std::string& reference) {
                 HAMLET_CHECK(!reference.empty(), field, " must be 'validation' or a method name, got ''");
               })
          .add("title", &O::title, "table heading (md) / title field")
          .add("published_runs", &O::published_runs, "runs behind each published number", checks::positive);
  return s;
}

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

namespace {

// "lr X" or "out_mul X"; when the seeds of a learned row were run at different scales (out_mul tuned per seed on
// validation problems) the seeds' values in order, "out_mul X / Y / Z".
std::string scale_of(const std::vector<OptionMap>& seeds) {
  const OptionMap& o = seeds.front();
  const std::string key = o.count("lr") ? "lr" : o.count("out_mul") ? "out_mul" : "";
  if (key.empty()) return "";
  std::vector<std::string> values;
  for (const auto& s : seeds) values.push_back(s.count(key) ? s.at(key) : "?");
  if (std::all_of(values.begin(), values.end(), [&](const std::string& v) { return v == values.front(); }))
    return key + " " + values.front();
  std::string out = key + " ";
  for (std::size_t i = 0; i < values.size(); ++i) out += (i ? " / " : "") + values[i];
  return out;
}

}  // namespace

Comparison compare(const RunSet& runs, const CompareOptions& options) {
  options.validate();
  Comparison c;
  c.title = options.title;
  c.task = runs.task, c.split = runs.split;
  c.problems = runs.problems, c.steps = runs.steps, c.problem_seed = runs.problem_seed;

  const MethodRuns* reference = nullptr;
  if (options.reference == "validation") {
    for (const auto& m : runs.methods) {
      if (m.learned || !m.validation_score) continue;
      if (!reference || *m.validation_score < *reference->validation_score) reference = &m;
    }
    HAMLET_CHECK(reference, "compare --reference=validation: no hand-designed method in the run files has a ",
                 "validation score (evaluate them with --tune), so name the reference with --reference=NAME");
    c.reference_reason = "the hand-designed optimizer with the best validation score (" +
                         fmt(*reference->validation_score) + ", the tuner's mean loss on validation problems)";
  } else {
    std::string names;
    for (const auto& m : runs.methods) {
      if (m.name == options.reference) reference = &m;
      names += (names.empty() ? "" : ", ") + m.name;
    }
    HAMLET_CHECK(reference, "compare --reference=", options.reference, ": no such method in the run files (", names,
                 ")");
    c.reference_reason = "fixed by --reference";
  }
  c.reference = reference->name;

  for (const auto& m : runs.methods) {
    ComparisonRow r;
    r.name = m.name;
    r.learned = m.learned;
    r.scale = scale_of(m.options);
    r.final_loss = seeded_mean_se(m.final_loss);
    const at::Tensor averaged = m.final_loss.mean(0);
    r.median = eval::median(averaged);
    r.mean_over_steps = m.mean_over_steps.mean().item<double>();
    for (int64_t s = 0; s < m.final_loss.size(0); ++s) r.seed_means.push_back(m.final_loss[s].mean().item<double>());
    r.non_finite = m.final_loss.isfinite().logical_not().any(0).sum().item<int64_t>();
    // A blow-up that stays finite (loss 1e3 on a problem that started at 2.3) is a failure the mean hides among the
    // seeds; `not below` rather than `above` so that NaN counts too.
    r.above_start = m.final_loss.lt(m.first_loss).logical_not().sum().item<int64_t>();
    r.runs = m.final_loss.numel();
    if (&m != reference) {
      r.delta = difference(m, *reference, r.delta_seed_paired);
      r.verdict = verdict(r.delta->mean, r.delta->se);
    }
    const auto p = options.published.find(m.name);
    if (p != options.published.end()) {
      r.published = p->second;
      r.vs_published = r.final_loss.mean - p->second;
      const double sd = averaged.std(/*unbiased=*/true).item<double>();
      r.vs_published_se = joint_se_vs_published(r.final_loss.se, sd, options.published_runs);
    }
    r.protocol = protocol_cell(m, options.protocol_defaults);
    c.rows.push_back(std::move(r));
  }
  for (std::size_t i = 0; i < runs.methods.size(); ++i) {
    for (std::size_t j = i + 1; j < runs.methods.size(); ++j) {
      const auto &a = runs.methods[i], &b = runs.methods[j];
      if (!a.learned || !b.learned) continue;
      PairRow pr;
      pr.a = a.name, pr.b = b.name;
      pr.delta = difference(a, b, pr.seed_paired);
      pr.verdict = verdict(pr.delta.mean, pr.delta.se);
      c.learned_pairs.push_back(pr);
    }
  }
  return c;
}

std::string to_markdown(const Comparison& c) {
  std::string out;
  if (!c.title.empty()) out += "### " + c.title + "\n\n";
  out += std::to_string(c.problems) + " paired " + c.split + " problems (problem seed " + std::to_string(c.problem_seed) +
         "), " + std::to_string(c.steps) + " steps; *final* = loss at the last logged step. Mean ± SE over "
         "meta-training seeds and problems; the SE counts both levels (docs/methods.md §12: SE² = s²/N + v/S, v the "
         "variance of the per-seed means); hand-designed rows and one-seed rows carry problem noise only. "
         "Δ = paired difference of the final loss against **" + c.reference + "**, " + c.reference_reason +
         "; **bold** = beyond 2 SE, and the verdict says whether the row beats or loses to it. *vs paper* = ours − "
         "published, **bold** beyond 2 joint SE √(SE² + (sd/√100)²) (the published number is one unpaired draw). "
         "*final ≥ start*: runs (seeds × problems) that ended no lower than their loss at step 0, non-finite ones "
         "included.\n\n";
  out += "| method | lr / scale | seeds | final (mean ± SE) | median | mean over steps | Δ vs " + c.reference +
         " (± SE) | verdict | paper | vs paper (± joint SE) | protocol | non-finite | final ≥ start |\n";
  out += "|---|---|---|---|---|---|---|---|---|---|---|---|---|\n";
  for (const auto& r : c.rows) {
    std::string delta = "—", verdict = "reference";
    if (r.delta) {
      delta = fmt(r.delta->mean) + " ± " + fmt(r.delta->se);
      if (r.verdict != Verdict::kTie) delta = "**" + delta + "**";
      if (r.delta_seed_paired) delta += " (paired by seed)";
      verdict = verdict_text(r.verdict);
    }
    std::string paper = "—", versus = "—";
    if (r.published) {
      paper = fmt(*r.published);
      versus = fmt_signed(r.vs_published) + " ± " + fmt(r.vs_published_se);
      if (std::isfinite(r.vs_published) && std::fabs(r.vs_published) > 2 * r.vs_published_se) {
        versus = "**" + versus + "**";
      }
    }
    out += "| " + r.name + " | " + (r.scale.empty() ? "—" : r.scale) + " | " + seeds_cell(r) + " | " +
           fmt(r.final_loss.mean) + " ± " + fmt(r.final_loss.se) + " | " + fmt(r.median) + " | " +
           fmt(r.mean_over_steps) + " | " + delta + " | " + verdict + " | " + paper + " | " + versus + " | " +
           r.protocol + " | " + std::to_string(r.non_finite) + "/" + std::to_string(c.problems) + " | " +
           std::to_string(r.above_start) + "/" + std::to_string(r.runs) + " |\n";
  }
  if (!c.learned_pairs.empty()) {
    const bool any_seed_paired = std::any_of(c.learned_pairs.begin(), c.learned_pairs.end(),
                                             [](const PairRow& p) { return p.seed_paired; });
    out += std::string("\nLearned optimizers against each other (row − column method, two-level SE; ") +
           (any_seed_paired ? "\"paired by seed\": the two rows evaluate the same weights seed by seed, so the seed "
                              "effect cancels and the SE is that of the per-seed differences; "
                            : "") +
           "**bold** = beyond 2 SE):\n\n"
           "| pair | Δ (mean ± SE) | verdict |\n|---|---|---|\n";
    for (const auto& p : c.learned_pairs) {
      std::string cell = fmt(p.delta.mean) + " ± " + fmt(p.delta.se);
      if (p.verdict != Verdict::kTie) cell = "**" + cell + "**";
      const std::string v = p.verdict == Verdict::kTie ? "tie"
                            : p.verdict == Verdict::kABetter ? p.a + " beats " + p.b
                                                             : p.b + " beats " + p.a;
      out += "| " + p.a + " − " + p.b + " | " + cell + (p.seed_paired ? " (paired by seed)" : "") + " | " + v + " |\n";
    }
  }
  return out;
}

Drift drift(const std::string& committed, const std::string& rerun, double threshold) {
  check_positive("compare.threshold", threshold);
  const RunSet a = read_runs({committed}), b = read_runs({rerun});
  check_same_problems(a, committed, b, rerun);
  Drift d;
  d.committed = committed, d.rerun = rerun, d.problems = a.problems, d.threshold = threshold;
  for (const auto& m : a.methods) {
    const MethodRuns* other = nullptr;
    for (const auto& n : b.methods) {
      if (n.name == m.name) other = &n;
    }
    if (!other) continue;
    DriftRow r;
    r.name = m.name;
    // Step 0 is the loss before any update: it differs only by how the two machines round the same forward pass.
    r.max_step0 = (other->first_loss[0] - m.first_loss[0]).abs().max().item<double>();
    const at::Tensor fa = m.final_loss[0], fb = other->final_loss[0];
    r.max_final = (fb - fa).abs().max().item<double>();
    const MeanSe ca = mean_se(fa);
    r.committed_mean = ca.mean, r.committed_se = ca.se;
    r.rerun_mean = fb.mean().item<double>();
    r.delta = paired_difference(fb, fa);
    r.shift_in_se = ca.se > 0 ? (r.rerun_mean - r.committed_mean) / ca.se : 0.0;
    r.moved = ((fb - fa).abs() > threshold).sum().item<int64_t>();
    d.rows.push_back(r);
  }
  HAMLET_CHECK(!d.rows.empty(), committed, " and ", rerun, " have no method in common");
  return d;
}

std::string to_markdown(const Drift& d) {
  std::string out = "| method | max Δ loss, step 0 | max Δ final loss | final mean: committed → rerun | rerun − committed "
                    "(± paired SE) | shift / committed SE | problems moved > " + fmt(d.threshold) + " |\n"
                    "|---|---|---|---|---|---|---|\n";
  char buf[64];
  for (const auto& r : d.rows) {
    std::snprintf(buf, sizeof(buf), "%+.2f", r.shift_in_se);
    char e0[32], ef[32];
    std::snprintf(e0, sizeof(e0), "%.1e", r.max_step0);
    std::snprintf(ef, sizeof(ef), "%.1e", r.max_final);
    out += "| " + r.name + " | " + std::string(e0) + " | " + std::string(ef) + " | " + fmt(r.committed_mean) + " → " +
           fmt(r.rerun_mean) + " | " + fmt_signed(r.delta.mean) + " ± " + fmt(r.delta.se) + " | " + buf + " | " +
           std::to_string(r.moved) + "/" + std::to_string(d.problems) + " |\n";
  }
  return out;
}

std::string to_csv(const Comparison& c) {
  std::string out =
      "method,learned,scale,seeds,problems,final_mean,final_se,final_problem_se,median,mean_over_steps,reference,"
      "delta_mean,delta_se,verdict,published,vs_published,vs_published_se,non_finite,above_start,runs\n";
  const auto num = [](double v) { return format_number(v); };
  for (const auto& r : c.rows) {
    out += r.name + "," + (r.learned ? "true" : "false") + "," + r.scale + "," + std::to_string(r.final_loss.seeds) +
           "," + std::to_string(r.final_loss.problems) + "," + num(r.final_loss.mean) + "," + num(r.final_loss.se) +
           "," + num(r.final_loss.problem_se) + "," + num(r.median) + "," + num(r.mean_over_steps) + "," +
           c.reference + "," + (r.delta ? num(r.delta->mean) : "") + "," + (r.delta ? num(r.delta->se) : "") + "," +
           (r.delta ? verdict_text(r.verdict) : "reference") + "," + (r.published ? num(*r.published) : "") + "," +
           (r.published ? num(r.vs_published) : "") + "," + (r.published ? num(r.vs_published_se) : "") + "," +
           std::to_string(r.non_finite) + "," + std::to_string(r.above_start) + "," + std::to_string(r.runs) + "\n";
  }
  return out;
}

std::string to_json(const Comparison& c) {
  nlohmann::json doc;
  doc["title"] = c.title;
  doc["task"] = c.task;
  doc["split"] = c.split;
  doc["problems"] = c.problems;
  doc["steps"] = c.steps;
  doc["problem_seed"] = c.problem_seed;
  doc["reference"] = c.reference;
  doc["reference_reason"] = c.reference_reason;
  doc["se_method"] = "two-level: SE^2 = s^2/N + sum of v/S over the methods involved (docs/methods.md 12)";
  const auto stat = [](const SeededMeanSe& s) {
    return nlohmann::json{{"mean", s.mean}, {"se", s.se}, {"problem_se", s.problem_se}, {"seeds", s.seeds},
                          {"problems", s.problems}};
  };
  doc["rows"] = nlohmann::json::array();
  for (const auto& r : c.rows) {
    nlohmann::json row{{"method", r.name}, {"learned", r.learned}, {"scale", r.scale},
                       {"final", stat(r.final_loss)}, {"median", r.median}, {"mean_over_steps", r.mean_over_steps},
                       {"seed_means", r.seed_means}, {"non_finite", r.non_finite}, {"above_start", r.above_start},
                       {"runs", r.runs}, {"protocol", r.protocol}};
    if (r.delta) {
      row["delta"] = stat(*r.delta);
      row["verdict"] = verdict_text(r.verdict);
      row["delta_seed_paired"] = r.delta_seed_paired;
    }
    if (r.published) {
      row["published"] = *r.published;
      row["vs_published"] = r.vs_published;
      row["vs_published_se"] = r.vs_published_se;
    }
    doc["rows"].push_back(row);
  }
  doc["learned_pairs"] = nlohmann::json::array();
  for (const auto& p : c.learned_pairs) {
    doc["learned_pairs"].push_back({{"a", p.a},
                                    {"b", p.b},
                                    {"delta", stat(p.delta)},
                                    {"verdict", verdict_text(p.verdict)},
                                    {"seed_paired", p.seed_paired}});
  }
  return doc.dump(2) + "\n";
}

}  // namespace hamlet::eval
