#include "hamlet/eval/report.hpp"

#include <cmath>
#include <cstdio>

#include "hamlet/core/options_json.hpp"
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

void write_method(io::H5Writer& writer, const std::string& group, const MethodResult& result) {
  const auto& tr = result.trajectory;
  writer.write(group + "/loss", tr.loss);
  writer.write(group + "/final_loss", tr.final_loss);
  writer.write(group + "/grad_norm", tr.grad_norm);
  writer.write(group + "/update_norm", tr.update_norm);
  for (const auto& [name, values] : tr.diagnostics) writer.write(group + "/diagnostics/" + name, values);
  writer.set_attribute(group, "method", result.name);
  writer.set_attribute(group, "options", options_to_json(result.options));
  writer.set_attribute(group, "seconds", tr.seconds);
  const auto& s = result.summary;
  writer.set_attribute(group, "final_mean", s.final_mean);
  writer.set_attribute(group, "final_se", s.final_se);
  writer.set_attribute(group, "final_median", s.final_median);
  writer.set_attribute(group, "mean_over_steps", s.mean_over_steps);
  writer.set_attribute(group, "mean_over_steps_se", s.mean_over_steps_se);
  writer.set_attribute(group, "non_finite", s.non_finite);
  if (result.tuning) {
    const auto& t = *result.tuning;
    writer.write(group + "/tune/grid", at::tensor(t.grid, at::kDouble));
    writer.write(group + "/tune/score", at::tensor(t.scores, at::kDouble));
    writer.set_attribute(group + "/tune", "best_lr", t.best_lr);
    writer.set_attribute(group + "/tune", "best_score", t.best_score);
    writer.set_attribute(group + "/tune", "criterion", "mean over validation problems of the mean logged loss");
  }
}

}  // namespace hamlet::eval
