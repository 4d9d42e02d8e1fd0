#include "hamlet/eval/suite.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <random>
#include <set>
#include <sstream>

#include "format.hpp"
#include "hamlet/core/error.hpp"

namespace hamlet::eval {
namespace {

using detail::fmt;

constexpr double kInf = std::numeric_limits<double>::infinity();

// NaN sorts as +∞: a run that produced no number is the worst outcome, not a missing one.
void sort_worst_last(std::vector<double>& values) {
  for (double& v : values) {
    if (std::isnan(v)) v = kInf;
  }
  std::sort(values.begin(), values.end());
}

// An unbiased draw from {0, ..., n − 1}: rejecting the top remainder of the 64-bit range removes the modulo bias, and
// unlike std::uniform_int_distribution (whose algorithm each standard library chooses) it gives the same draws on
// every machine.
// Every task's scores in one list (tasks × seeds), as the IQM, its interval and the median pool them.
std::vector<double> pool(const std::vector<std::vector<double>>& scores) {
  std::vector<double> all;
  for (const auto& task : scores) all.insert(all.end(), task.begin(), task.end());
  return all;
}

uint64_t draw_below(std::mt19937_64& rng, uint64_t n) {
  const uint64_t limit = std::numeric_limits<uint64_t>::max() - std::numeric_limits<uint64_t>::max() % n;
  uint64_t x = rng();
  while (x >= limit) x = rng();
  return x % n;
}

}  // namespace

double interquartile_mean(std::vector<double> values) {
  HAMLET_CHECK(!values.empty(), "interquartile mean of no values");
  sort_worst_last(values);
  // In units of 1/(4n) the quartiles sit at n and 3n and value k covers [4k, 4k + 4]: integer weights, exact.
  const int64_t n = static_cast<int64_t>(values.size());
  double sum = 0;
  for (int64_t k = 0; k < n; ++k) {
    const int64_t w = std::min(4 * k + 4, 3 * n) - std::max(4 * k, n);
    if (w > 0) sum += static_cast<double>(w) * values[static_cast<std::size_t>(k)];
  }
  return sum / static_cast<double>(2 * n);
}

double quantile(std::vector<double> values, double p) {
  HAMLET_CHECK(!values.empty(), "quantile of no values");
  HAMLET_CHECK(p >= 0 && p <= 1, "quantile: p must be in [0, 1], got ", format_number(p));
  sort_worst_last(values);
  const double h = static_cast<double>(values.size() - 1) * p;
  const auto k = static_cast<std::size_t>(std::floor(h));
  const double frac = h - static_cast<double>(k);
  if (frac == 0 || k + 1 >= values.size()) return values[k];
  if (std::isinf(values[k + 1])) return kInf;  // interpolating towards +∞ (values[k] <= values[k + 1])
  return values[k] + frac * (values[k + 1] - values[k]);
}

IqmInterval bootstrap_iqm(const std::vector<std::vector<double>>& scores, int64_t resamples, uint64_t seed,
                          double confidence) {
  HAMLET_CHECK(!scores.empty(), "bootstrap_iqm: no tasks");
  HAMLET_CHECK(resamples >= 1, "bootstrap_iqm: resamples must be >= 1, got ", resamples);
  HAMLET_CHECK(confidence > 0 && confidence < 1, "bootstrap_iqm: confidence must be in (0, 1), got ",
               format_number(confidence));
  IqmInterval out;
  for (const auto& task : scores) HAMLET_CHECK(!task.empty(), "bootstrap_iqm: a task without scores");
  const std::vector<double> pooled = pool(scores);
  out.tasks = static_cast<int64_t>(scores.size());
  out.scores = static_cast<int64_t>(pooled.size());
  out.iqm = interquartile_mean(pooled);
  std::mt19937_64 rng(seed);
  std::vector<double> iqms;
  iqms.reserve(static_cast<std::size_t>(resamples));
  const uint64_t tasks = scores.size();
  for (int64_t r = 0; r < resamples; ++r) {
    std::vector<double> sample;
    sample.reserve(pooled.size());
    for (uint64_t t = 0; t < tasks; ++t) {
      const auto& task = scores[draw_below(rng, tasks)];
      for (std::size_t s = 0; s < task.size(); ++s) sample.push_back(task[draw_below(rng, task.size())]);
    }
    iqms.push_back(interquartile_mean(std::move(sample)));
  }
  out.low = quantile(iqms, (1 - confidence) / 2);
  out.high = quantile(iqms, (1 + confidence) / 2);
  return out;
}

const OptionSpec<SuiteOptions>& SuiteOptions::spec() {
  using O = SuiteOptions;
  static const auto s =
      OptionSpec<O>("suite")
          .add("normalizer", &O::normalizer,
               "suite mode: the method whose mean final loss divides every score, per task (tuned Adam, as Celo)",
               [](const std::string& field, const std::string& name) {
                 HAMLET_CHECK(!name.empty(), field, " must name a method, got ''");
               })
          .add("resamples", &O::resamples, "suite mode: bootstrap resamples of the IQM's interval", checks::positive)
          .add("bootstrap_seed", &O::bootstrap_seed, "suite mode: seed of the bootstrap draws")
          .add("confidence", &O::confidence, "suite mode: coverage of the bootstrap interval, in (0, 1)",
               [](const std::string& field, double c) {
                 HAMLET_CHECK(c > 0 && c < 1, field, " must be in (0, 1), got ", format_number(c));
               });
  return s;
}


std::vector<SuiteTask> read_suite_file(const std::string& path) {
  namespace fs = std::filesystem;
  std::ifstream in(path);
  HAMLET_CHECK(in.good(), "suite file ", path, ": cannot be read");
  const fs::path base = fs::path(path).parent_path();
  std::vector<SuiteTask> tasks;
  std::set<std::string> labels;
  std::string line;
  for (int64_t number = 1; std::getline(in, line); ++number) {
    const auto hash = line.find('#');
    if (hash != std::string::npos) line.erase(hash);
    if (trim(line).empty()) continue;
    std::vector<std::string> fields;
    std::size_t from = 0;
    for (auto bar = line.find('|'); bar != std::string::npos; bar = line.find('|', from)) {
      fields.push_back(trim(line.substr(from, bar - from)));
      from = bar + 1;
    }
    fields.push_back(trim(line.substr(from)));
    const std::string where = "suite file " + path + " line " + std::to_string(number);
    HAMLET_CHECK(fields.size() == 3, where, ": expected 'label | title | run files', got ", fields.size(),
                 " field(s)");
    SuiteTask task;
    task.label = fields[0], task.title = fields[1];
    HAMLET_CHECK(!task.label.empty(), where, ": the label is empty");
    HAMLET_CHECK(labels.insert(task.label).second, where, ": the label '", task.label, "' is given twice");
    std::istringstream files(fields[2]);
    for (std::string item; files >> item;) {
      RunInput input = parse_run_input(item);
      if (fs::path(input.path).is_relative()) input.path = (base / input.path).string();
      task.inputs.push_back(input);
    }
    HAMLET_CHECK(!task.inputs.empty(), where, ": task '", task.label, "' names no run files");
    tasks.push_back(std::move(task));
  }
  HAMLET_CHECK(!tasks.empty(), "suite file ", path, ": no tasks");
  return tasks;
}

namespace {

const ComparisonRow& find_row(const Comparison& c, const std::string& name) {
  for (const auto& r : c.rows) {
    if (r.name == name) return r;
  }
  throw Error("internal: no row " + name);
}

SuiteTaskResult evaluate_task(const SuiteTask& task, const SuiteOptions& options, const CompareOptions& base) {
  const std::string where = "suite task '" + task.label + "'";
  const RunSet runs = read_runs(task.inputs);
  const MethodRuns* normalizer = nullptr;
  std::string names;
  for (const auto& m : runs.methods) {
    if (m.name == options.normalizer) normalizer = &m;
    names += (names.empty() ? "" : ", ") + m.name;
  }
  HAMLET_CHECK(normalizer, where, ": no method '", options.normalizer, "' (the normaliser) in its run files (", names,
               ")");
  HAMLET_CHECK(normalizer->final_loss.size(0) == 1, where, ": the normaliser '", options.normalizer, "' has ",
               normalizer->final_loss.size(0), " seeds; it must be one method evaluated once");

  CompareOptions by_validation = base, by_normalizer = base;
  by_validation.reference = "validation";
  by_normalizer.reference = options.normalizer;
  Comparison cv, cn;
  try {
    cv = compare(runs, by_validation);
    cn = compare(runs, by_normalizer);
  } catch (const Error& e) {
    throw Error(where + ": " + e.what());
  }

  SuiteTaskResult out;
  out.label = task.label, out.title = task.title, out.task = runs.task;
  out.problems = runs.problems, out.steps = runs.steps;
  out.validation_choice = cv.reference;
  for (const auto& m : runs.methods) {
    if (m.name == cv.reference) out.validation_score = *m.validation_score;
  }
  out.normalizer_mean = normalizer->final_loss.mean().item<double>();
  HAMLET_CHECK(std::isfinite(out.normalizer_mean) && out.normalizer_mean > 0, where, ": the normaliser '",
               options.normalizer, "' has mean final loss ", format_number(out.normalizer_mean),
               "; scores need a finite, positive one");

  for (const auto& m : runs.methods) {
    const ComparisonRow &v = find_row(cv, m.name), &n = find_row(cn, m.name);
    SuiteTaskRow r;
    r.name = m.name;
    r.learned = m.learned;
    r.final_loss = v.final_loss;
    r.seed_means = v.seed_means;
    r.score = r.final_loss.mean / out.normalizer_mean;
    const at::Tensor start_means = m.first_loss.mean(1);  // [S]: each seed's mean loss at step 0
    for (std::size_t s = 0; s < r.seed_means.size(); ++s) {
      const double mean = r.seed_means[s];
      r.scores.push_back(std::isfinite(mean) ? mean / out.normalizer_mean : kInf);
      const double start = start_means[static_cast<int64_t>(s)].item<double>();
      if (!std::isfinite(mean) || !(mean < start)) ++r.diverged_seeds;
    }
    r.delta_validation = v.delta;
    r.verdict_validation = v.verdict;
    r.delta_normalizer = n.delta;
    r.verdict_normalizer = n.verdict;
    out.rows.push_back(std::move(r));
  }
  return out;
}

}  // namespace

Suite evaluate_suite(const std::vector<SuiteTask>& tasks, const SuiteOptions& options,
                     const CompareOptions& compare_options) {
  options.validate();
  HAMLET_CHECK(!tasks.empty(), "a suite needs at least one task");
  Suite suite;
  suite.title = compare_options.title;
  suite.options = options;
  for (const auto& t : tasks) suite.tasks.push_back(evaluate_task(t, options, compare_options));

  // Methods in order of first appearance, with the tasks that hold them.
  std::vector<std::string> order;
  std::map<std::string, int64_t> present;
  for (const auto& t : suite.tasks) {
    for (const auto& r : t.rows) {
      if (!present.count(r.name)) order.push_back(r.name);
      ++present[r.name];
    }
  }
  const auto task_count = static_cast<int64_t>(suite.tasks.size());
  const auto aggregate = [&](const std::string& name, bool learned, const auto& row_of) {
    SuiteAggregateRow a;
    a.name = name;
    a.learned = learned;
    std::vector<std::vector<double>> scores;
    for (const auto& t : suite.tasks) {
      const SuiteTaskRow& r = row_of(t);
      scores.push_back(r.scores);
      a.seeds += static_cast<int64_t>(r.scores.size());
      a.diverged_seeds += r.diverged_seeds;
      if (r.diverged_seeds > 0) {
        ++a.diverged_tasks;
        a.diverged_on.push_back(t.label);
      }
      if (r.delta_validation) {
        if (r.verdict_validation == Verdict::kABetter) ++a.beats;
        else if (r.verdict_validation == Verdict::kBBetter) ++a.loses;
        else ++a.ties;
      }
    }
    a.iqm = bootstrap_iqm(scores, options.resamples, options.bootstrap_seed, options.confidence);
    a.median = quantile(pool(scores), 0.5);
    suite.aggregate.push_back(std::move(a));
  };
  const auto named = [](const SuiteTaskResult& t, const std::string& name) -> const SuiteTaskRow& {
    for (const auto& r : t.rows) {
      if (r.name == name) return r;
    }
    throw Error("internal: no row " + name);
  };
  std::vector<std::string> learned_names;
  for (const auto& name : order) {
    if (present[name] < task_count) {
      suite.not_aggregated.push_back(name + " (" + std::to_string(present[name]) + " of " +
                                     std::to_string(task_count) + " tasks)");
      continue;
    }
    bool learned = false;
    for (const auto& r : suite.tasks.front().rows) {
      if (r.name == name) learned = r.learned;
    }
    if (learned) {
      learned_names.push_back(name);
      continue;
    }
    aggregate(name, false, [&](const SuiteTaskResult& t) -> const SuiteTaskRow& { return named(t, name); });
  }
  // The baseline a practitioner would have chosen on each task; its row there has no Δ against itself, so it
  // counts no verdicts.
  aggregate(kValidationChoiceRow, false,
            [&](const SuiteTaskResult& t) -> const SuiteTaskRow& { return named(t, t.validation_choice); });
  for (const auto& name : learned_names) {
    aggregate(name, true, [&](const SuiteTaskResult& t) -> const SuiteTaskRow& { return named(t, name); });
  }
  return suite;
}

namespace {

std::string verdict_word(Verdict v) {
  return v == Verdict::kABetter ? "beats" : v == Verdict::kBBetter ? "loses" : "tie";
}

std::string delta_cell(const std::optional<SeededMeanSe>& d, Verdict v) {
  if (!d) return "—";
  std::string cell = fmt(d->mean) + " ± " + fmt(d->se);
  return v == Verdict::kTie ? cell : "**" + cell + "**";
}

std::string percent(double confidence) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%g %%", 100 * confidence);
  return buf;
}

}  // namespace

std::string to_markdown(const Suite& s) {
  const SuiteOptions& o = s.options;
  std::string out;
  if (!s.title.empty()) out += "## " + s.title + "\n\n";
  out += "### Aggregate over " + std::to_string(s.tasks.size()) + " tasks\n\n";
  out += "*score* = a seed's mean final loss on a task divided by **" + o.normalizer +
         "**'s mean final loss on that task (its tuned learning rate; a non-finite seed mean scores +∞). *IQM* = "
         "interquartile mean of the scores pooled over tasks and meta-training seeds (fractional weights at the "
         "quartiles, docs/methods.md §12); *" + percent(o.confidence) + " CI* = percentile interval of the IQM over " +
         std::to_string(o.resamples) + " stratified bootstrap resamples (tasks with replacement, then each drawn "
         "task's seeds with replacement; bootstrap seed " + std::to_string(o.bootstrap_seed) +
         "). Below 1 is better than " + o.normalizer + ". *diverged*: tasks where a seed's mean final loss is "
         "non-finite or not below its mean loss at step 0 (diverged seeds / all seeds in brackets). *vs validation "
         "choice*: the per-task verdicts (beyond 2 seed-aware SE) against the hand-designed optimizer with the best "
         "validation score. *" + std::string(kValidationChoiceRow) + "*: on each task the optimizer that tuning on "
         "validation problems picks.\n\n";
  out += "| method | tasks | scores | IQM of final / " + o.normalizer + " | " + percent(o.confidence) +
         " CI | median | diverged on | vs validation choice: beats / ties / loses |\n";
  out += "|---|---|---|---|---|---|---|---|\n";
  for (const auto& a : s.aggregate) {
    std::string diverged = std::to_string(a.diverged_tasks) + " (" + std::to_string(a.diverged_seeds) + "/" +
                           std::to_string(a.seeds) + ")";
    if (!a.diverged_on.empty()) {
      std::string list;
      for (const auto& l : a.diverged_on) list += (list.empty() ? "" : ", ") + l;
      diverged += ": " + list;
    }
    const bool has_verdicts = a.beats + a.ties + a.loses > 0;
    out += "| " + std::string(a.learned ? a.name : "*" + a.name + "*") + " | " + std::to_string(a.iqm.tasks) + " | " +
           std::to_string(a.iqm.scores) + " | " + fmt(a.iqm.iqm) + " | [" + fmt(a.iqm.low) + ", " + fmt(a.iqm.high) +
           "] | " + fmt(a.median) + " | " + diverged + " | " +
           (has_verdicts ? std::to_string(a.beats) + " / " + std::to_string(a.ties) + " / " + std::to_string(a.loses)
                         : "—") +
           " |\n";
  }
  out += "\nHand-designed optimizers in *italics* (one run per task: the bootstrap resamples only tasks).";
  if (!s.not_aggregated.empty()) {
    std::string list;
    for (const auto& n : s.not_aggregated) list += (list.empty() ? "" : ", ") + n;
    out += " Not aggregated (not on every task): " + list + ".";
  }
  out += "\n\n### Per task\n\n"
         "Final loss = loss at the last logged step, mean ± SE over meta-training seeds and paired problems (two-level "
         "SE, docs/methods.md §12; hand-designed rows: problem noise only). Δ = paired difference of the final loss, "
         "seed-aware SE; **bold** beyond 2 SE. *score* = final / " + o.normalizer + ". *diverged seeds*: seeds whose "
         "mean final loss is non-finite or not below their mean loss at step 0.\n";
  for (const auto& t : s.tasks) {
    out += "\n#### " + t.label + (t.title.empty() ? "" : ": " + t.title) + "\n\n";
    out += std::to_string(t.problems) + " paired problems, " + std::to_string(t.steps) + " steps (task " + t.task +
           "); validation choice **" + t.validation_choice + "** (validation score " + fmt(t.validation_score) + "); " +
           o.normalizer + "'s mean final loss " + fmt(t.normalizer_mean) + ".\n\n";
    out += "| method | seeds | final (mean ± SE) | score | Δ vs validation choice (± SE) | verdict | Δ vs " + o.normalizer +
           " (± SE) | verdict | diverged seeds |\n";
    out += "|---|---|---|---|---|---|---|---|---|\n";
    for (const auto& r : t.rows) {
      std::string seeds = "—";
      if (r.learned) {
        seeds = std::to_string(r.seed_means.size());
        if (r.seed_means.size() > 1) {
          std::string means;
          for (double m : r.seed_means) means += (means.empty() ? "" : " / ") + fmt(m);
          seeds += ": " + means;
        }
      }
      out += "| " + r.name + " | " + seeds + " | " + fmt(r.final_loss.mean) + " ± " + fmt(r.final_loss.se) + " | " +
             fmt(r.score) + " | " + delta_cell(r.delta_validation, r.verdict_validation) + " | " +
             (r.delta_validation ? verdict_word(r.verdict_validation) : "reference") + " | " +
             delta_cell(r.delta_normalizer, r.verdict_normalizer) + " | " +
             (r.delta_normalizer ? verdict_word(r.verdict_normalizer) : "reference") + " | " +
             std::to_string(r.diverged_seeds) + "/" + std::to_string(r.seed_means.size()) + " |\n";
    }
  }
  return out;
}

std::string to_json(const Suite& s) {
  // JSON has no infinity: non-finite numbers are written as null.
  const auto num = [](double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); };
  const auto nums = [&num](const std::vector<double>& v) {
    nlohmann::json a = nlohmann::json::array();
    for (double x : v) a.push_back(num(x));
    return a;
  };
  const auto stat = [&num](const SeededMeanSe& x) {
    return nlohmann::json{{"mean", num(x.mean)}, {"se", num(x.se)}, {"seeds", x.seeds}, {"problems", x.problems}};
  };
  nlohmann::json doc;
  doc["title"] = s.title;
  doc["normalizer"] = s.options.normalizer;
  doc["resamples"] = s.options.resamples;
  doc["bootstrap_seed"] = s.options.bootstrap_seed;
  doc["confidence"] = s.options.confidence;
  doc["aggregate"] = nlohmann::json::array();
  for (const auto& a : s.aggregate) {
    doc["aggregate"].push_back({{"method", a.name}, {"learned", a.learned}, {"tasks", a.iqm.tasks},
                                {"scores", a.iqm.scores}, {"iqm", num(a.iqm.iqm)}, {"ci_low", num(a.iqm.low)},
                                {"ci_high", num(a.iqm.high)}, {"median", num(a.median)},
                                {"diverged_tasks", a.diverged_tasks}, {"diverged_seeds", a.diverged_seeds},
                                {"seeds", a.seeds}, {"diverged_on", a.diverged_on}, {"beats", a.beats},
                                {"ties", a.ties}, {"loses", a.loses}});
  }
  doc["not_aggregated"] = s.not_aggregated;
  doc["tasks"] = nlohmann::json::array();
  for (const auto& t : s.tasks) {
    nlohmann::json rows = nlohmann::json::array();
    for (const auto& r : t.rows) {
      nlohmann::json row{{"method", r.name}, {"learned", r.learned}, {"final", stat(r.final_loss)},
                         {"seed_means", nums(r.seed_means)}, {"scores", nums(r.scores)}, {"score", num(r.score)},
                         {"diverged_seeds", r.diverged_seeds}};
      if (r.delta_validation) {
        row["delta_validation"] = stat(*r.delta_validation);
        row["verdict_validation"] = verdict_word(r.verdict_validation);
      }
      if (r.delta_normalizer) {
        row["delta_normalizer"] = stat(*r.delta_normalizer);
        row["verdict_normalizer"] = verdict_word(r.verdict_normalizer);
      }
      rows.push_back(row);
    }
    doc["tasks"].push_back({{"label", t.label}, {"title", t.title}, {"task", t.task}, {"problems", t.problems},
                            {"steps", t.steps}, {"validation_choice", t.validation_choice},
                            {"validation_score", t.validation_score}, {"normalizer_mean", t.normalizer_mean},
                            {"rows", rows}});
  }
  return doc.dump(2) + "\n";
}

}  // namespace hamlet::eval
