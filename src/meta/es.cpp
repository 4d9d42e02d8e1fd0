#include "hamlet/meta/es.hpp"

#include <ATen/ATen.h>


namespace hamlet::meta {

TensorList es_combine(const std::vector<double>& delta, const std::vector<double>& mask, const TensorList& eps,
                      double sigma) {
  double num = 0, den = 0;
  for (std::size_t s = 0; s < delta.size(); ++s) {
    num += delta[s] * mask[s];
    den += mask[s];
  }
  const double coefficient = den > 0 ? num / den / (2 * sigma * sigma) : 0.0;
  TensorList out;
  for (const auto& e : eps) out.push_back(e.to(at::kDouble) * coefficient);
  return out;
}

TensorList TruncatedEs::combine(std::size_t, const std::vector<double>& delta, const TensorList& eps) {
  return es_combine(delta, std::vector<double>(delta.size(), 1.0), eps, options_.sigma);
}

}  // namespace hamlet::meta
