#include "hamlet/eval/curves.hpp"

#include <cmath>
#include <cstdio>

#include "hamlet/core/error.hpp"
#include "hamlet/core/output_file.hpp"
#include "hamlet/io/run_file.hpp"

namespace hamlet::eval {

LearningCurve learning_curve(const at::Tensor& loss) {
  HAMLET_CHECK(loss.dim() == 2 && loss.size(0) > 0, "learning curve needs a [problems, steps] tensor, got ",
               loss.sizes());
  const at::Tensor v = loss.to(at::kCPU, at::kDouble);
  LearningCurve c;
  c.problems = v.size(0);
  c.mean = v.mean(0);
  c.se = c.problems > 1 ? v.std(0, /*unbiased=*/true) / std::sqrt(static_cast<double>(c.problems))
                        : at::zeros_like(c.mean);
  // Sort each step's column; the median is the middle value (mean of the two middle ones for even N).
  const at::Tensor sorted = std::get<0>(v.sort(0));
  const int64_t n = c.problems;
  c.median = n % 2 ? sorted[n / 2] : 0.5 * (sorted[n / 2 - 1] + sorted[n / 2]);
  // A NaN anywhere in a column makes its median undefined.
  c.median = at::where(v.isnan().any(0), at::full_like(c.median, NAN), c.median);
  return c;
}

int64_t export_curves(const std::string& h5_path, const std::string& csv_path) {
  const io::RunRecord run = io::read_run(h5_path);
  check_output_path(csv_path, "--out");
  std::vector<std::pair<std::string, LearningCurve>> curves;
  for (const auto& m : run.methods) {
    HAMLET_CHECK(m.evaluated(), h5_path, ": method '", m.name, "' has no loss curve (a tune file?)");
    curves.emplace_back(m.name, learning_curve(m.loss));
  }
  std::string text = "method,step,mean,se,median,problems\n";
  char buf[256];
  for (const auto& [name, c] : curves) {
    for (int64_t t = 0; t < c.mean.size(0); ++t) {
      std::snprintf(buf, sizeof(buf), "%s,%lld,%.10g,%.10g,%.10g,%lld\n", name.c_str(), static_cast<long long>(t),
                    c.mean[t].item<double>(), c.se[t].item<double>(), c.median[t].item<double>(),
                    static_cast<long long>(c.problems));
      text += buf;
    }
  }
  write_text_atomically(csv_path, text, "--out");
  return static_cast<int64_t>(curves.size());
}

}  // namespace hamlet::eval
