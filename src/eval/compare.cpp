#include "hamlet/eval/compare.hpp"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <iterator>

#include "format.hpp"
#include "hamlet/core/error.hpp"

namespace hamlet::eval {
namespace {

using detail::fmt;

// Optimizer options that define what a learned row is (its architecture and its scale live elsewhere).
const std::vector<std::string> kLearnedOptionKeys = {"mass", "dissipation", "hidden", "preprocess", "norm"};

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

}  // namespace hamlet::eval
