#include "hamlet/eval/tune.hpp"

#include <spdlog/spdlog.h>

#include <cmath>
#include <limits>

#include "hamlet/core/error.hpp"
#include "hamlet/core/options.hpp"

namespace hamlet::eval {

std::vector<double> default_lr_grid() { return {1, 0.3, 0.1, 0.03, 0.01, 0.003, 0.001, 3e-4, 1e-4, 3e-5, 1e-5}; }

TuneResult tune_learning_rate(const tasks::Task& task, const std::function<optim::OptimizerPtr(double)>& make,
                              const std::vector<double>& grid, const EvaluateOptions& options) {
  HAMLET_CHECK(options.split == tasks::Split::kValidation,
               "tuning must use the validation split, not '", tasks::split_name(options.split), "'");
  HAMLET_CHECK(!grid.empty(), "tune.grid is empty");
  for (double lr : grid) check_positive("tune.grid entry", lr);
  TuneResult out;
  out.grid = grid;
  out.best_score = std::numeric_limits<double>::infinity();
  for (double lr : grid) {
    const auto optimizer = make(lr);
    EvaluateOptions opts = options;
    opts.label = optimizer->name() + " lr=" + format_number(lr);
    const Trajectory tr = evaluate(task, *optimizer, opts);
    double score = tr.loss.mean().item<double>();
    if (!std::isfinite(score)) score = std::numeric_limits<double>::infinity();
    out.scores.push_back(score);
    spdlog::debug("tune {} lr={} score={}", optimizer->name(), format_number(lr), score);
    if (score < out.best_score) {
      out.best_score = score;
      out.best_lr = lr;
    }
  }
  HAMLET_CHECK(std::isfinite(out.best_score), "tuning failed: every learning rate in the grid diverged");
  return out;
}

}  // namespace hamlet::eval
