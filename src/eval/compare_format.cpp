#include "hamlet/eval/compare_format.hpp"

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdio>

#include "format.hpp"

namespace hamlet::eval {

namespace detail {

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

}  // namespace detail

namespace {

using detail::fmt;
using detail::fmt_signed;

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
