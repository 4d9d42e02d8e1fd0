#pragma once
// Learning curves across paired problems: per step, the mean, standard error and median of the logged loss.
#include <ATen/ATen.h>

#include <string>
#include <vector>

namespace hamlet::eval {

struct LearningCurve {
  at::Tensor mean, se, median;  // [K] float64
  int64_t problems = 0;
};

// `loss`: [N, K] (problems × steps).
LearningCurve learning_curve(const at::Tensor& loss);

// Writes every method of an evaluate run file (`/methods/<m>/loss`) as CSV rows
// "method,step,mean,se,median,problems" to `csv_path` (atomically). Returns the number of methods.
int64_t export_curves(const std::string& h5_path, const std::string& csv_path);

}  // namespace hamlet::eval
