#include "hamlet/eval/report.hpp"

#include <cmath>
#include <cstdio>

#include "hamlet/eval/statistics.hpp"

namespace hamlet::eval {
namespace {

std::string fmt(double v) {
  char buf[64];
  if (!std::isfinite(v)) return std::isnan(v) ? "nan" : (v > 0 ? "inf" : "-inf");
  const double a = std::fabs(v);
  if (a != 0 && (a < 1e-3 || a >= 1e5)) {
    std::snprintf(buf, sizeof(buf), "%.3e", v);
  } else {
    std::snprintf(buf, sizeof(buf), "%.4f", v);
  }
  return buf;
}

}  // namespace

std::string summary_table(const std::vector<MethodResult>& results) {
  std::string out =
      "| method | lr | final loss (mean ± SE) | median | mean over steps (± SE) | diverged | Δ vs best (± SE) |\n"
      "|---|---|---|---|---|---|---|\n";
  std::size_t best = 0;
  for (std::size_t i = 0; i < results.size(); ++i) {
    const double v = results[i].summary.final_mean, b = results[best].summary.final_mean;
    if (std::isfinite(v) && (!std::isfinite(b) || v < b)) best = i;
  }
  for (std::size_t i = 0; i < results.size(); ++i) {
    const auto& r = results[i];
    const auto& s = r.summary;
    // Learned optimizers have no learning rate; their output scale plays that role.
    auto lr = r.options.find("lr");
    if (lr == r.options.end()) lr = r.options.find("out_mul");
    std::string delta = "—";
    if (i != best && !results.empty()) {
      const auto& a = r.trajectory.loss;
      const auto& b = results[best].trajectory.loss;
      const MeanSe d = paired_difference(a.select(1, a.size(1) - 1), b.select(1, b.size(1) - 1));
      delta = fmt(d.mean) + " ± " + fmt(d.se) + (d.mean > 2 * d.se ? " *" : "");
    }
    out += "| " + r.name + " | " + (lr == r.options.end() ? "—" : lr->second) + " | " + fmt(s.final_mean) + " ± " +
           fmt(s.final_se) + " | " + fmt(s.final_median) + " | " + fmt(s.mean_over_steps) + " ± " +
           fmt(s.mean_over_steps_se) + " | " + std::to_string(s.non_finite) + "/" + std::to_string(s.problems) +
           " | " + delta + " |\n";
  }
  return out;
}

io::TuneRecord to_record(const TuneResult& t) {
  io::TuneRecord out;
  out.grid = t.grid;
  out.scores = t.scores;
  out.best_lr = t.best_lr;
  out.best_score = t.best_score;
  return out;
}

io::MethodRecord to_record(const MethodResult& result) {
  const auto& tr = result.trajectory;
  const auto& s = result.summary;
  io::MethodRecord m;
  m.name = result.name;
  m.options = result.options;
  m.loss = tr.loss;
  m.final_loss = tr.final_loss;
  m.grad_norm = tr.grad_norm;
  m.update_norm = tr.update_norm;
  m.diagnostics = tr.diagnostics;
  m.seconds = tr.seconds;
  m.final_mean = s.final_mean;
  m.final_se = s.final_se;
  m.final_median = s.final_median;
  m.mean_over_steps = s.mean_over_steps;
  m.mean_over_steps_se = s.mean_over_steps_se;
  m.non_finite = s.non_finite;
  if (result.tuning) m.tune = to_record(*result.tuning);
  return m;
}

}  // namespace hamlet::eval
