#pragma once
// The metrics of hamiltonian_ai's evaluate_model (docs/methods.md §7.4) from labels and hard predictions:
//   accuracy;
//   precision, recall and F1 per class, averaged with weights = the class's share of the true labels (scikit-learn's
//   average = "weighted"), over the classes present in the labels or the predictions; zero_division = 1 (a class
//   never predicted has precision 1; F1 = 2·TP / (2·TP + FP + FN));
//   the "AUC" of roc_auc_score applied to the 0/1 predictions themselves. For binary labels that is
//   (TPR + TNR)/2, balanced accuracy, not a ranking AUC. NaN when the labels hold one class only or are not
//   binary (roc_auc_score raises there).
// Known answer (§7.4): labels (0,0,1,1), predictions (0,1,1,1) give accuracy 0.75, precision 0.833333,
// recall 0.75, F1 0.733333, AUC 0.75.
#include <ATen/ATen.h>

namespace hamlet::tasks {

struct ClassificationMetrics {
  double accuracy = 0, precision = 0, recall = 0, f1 = 0, auc = 0;
};

// labels and predictions: [N] integer class indices >= 0, N >= 1.
ClassificationMetrics classification_metrics(const at::Tensor& labels, const at::Tensor& predictions);

}  // namespace hamlet::tasks
