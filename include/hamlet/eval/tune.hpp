#pragma once
// Learning-rate tuning by grid search on validation problems (never the test problems).
//
// For each learning rate in the grid, the optimizer runs on the validation problems and is scored by the mean
// over problems of the mean over the K logged losses (the L2L reproduction's "summed trajectory loss" / K).
// Non-finite scores lose. Ties keep the first (largest learning rate first in the default grid).
#include <functional>
#include <string>
#include <vector>

#include "hamlet/eval/evaluate.hpp"

namespace hamlet::eval {

// The L2L reproduction's grid (docs/methods.md §6.2).
std::vector<double> default_lr_grid();

struct TuneResult {
  std::vector<double> grid;
  std::vector<double> scores;
  double best_lr = 0;
  double best_score = 0;
};

// `make` builds the optimizer for a learning rate; `options.split` must be kValidation (checked).
TuneResult tune_learning_rate(const tasks::Task& task, const std::function<optim::OptimizerPtr(double)>& make,
                              const std::vector<double>& grid, const EvaluateOptions& options);

}  // namespace hamlet::eval
