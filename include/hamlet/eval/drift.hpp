#pragma once
// Machine drift: the same evaluation rerun (another CPU, build or day) against a committed run, method by method
// and problem by problem (`hamlet compare --mode=drift`; docs/methods.md §12 for the paired SE).
#include <string>
#include <vector>

#include "hamlet/eval/run_set.hpp"
#include "hamlet/eval/statistics.hpp"

namespace hamlet::eval {

struct DriftRow {
  std::string name;
  double max_step0 = 0, max_final = 0;  // largest per-problem |rerun − committed| of the first and the final logged loss
  double committed_mean = 0, committed_se = 0, rerun_mean = 0;
  MeanSe delta;                         // paired rerun − committed final loss over problems
  double shift_in_se = 0;               // (rerun_mean − committed_mean) / committed_se
  int64_t moved = 0;                    // problems whose final loss moved by more than the threshold
};
struct Drift {
  std::string committed, rerun;
  int64_t problems = 0;
  double threshold = 0.05;
  std::vector<DriftRow> rows;  // methods present in both files, in the committed file's order
};
// Pairs two run files of the same problems method by method; throws naming the files when they do not pair.
Drift drift(const std::string& committed, const std::string& rerun, double threshold = 0.05);
std::string to_markdown(const Drift& drift);

}  // namespace hamlet::eval
