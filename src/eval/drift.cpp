#include "hamlet/eval/drift.hpp"

#include <cstdio>

#include "format.hpp"
#include "hamlet/core/error.hpp"

namespace hamlet::eval {

using detail::fmt;
using detail::fmt_signed;

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

}  // namespace hamlet::eval
