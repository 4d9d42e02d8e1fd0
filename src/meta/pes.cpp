#include "hamlet/meta/pes.hpp"

#include <ATen/ATen.h>


namespace hamlet::meta {

PesCombination pes_combine(const std::vector<double>& delta, const std::vector<double>& mask,
                           const std::vector<bool>& is_done, const TensorList& xi_old, const TensorList& eps,
                           double sigma) {
  double a = 0, c = 0, den = 0;
  bool finished = false;
  for (std::size_t s = 0; s < delta.size(); ++s) {
    finished = finished || is_done[s];
    (finished ? c : a) += delta[s] * mask[s];
    den += mask[s];
  }
  a = den > 0 ? a / den : 0.0;
  c = den > 0 ? c / den : 0.0;
  PesCombination out;
  const double scale = 1.0 / (2 * sigma * sigma);
  for (std::size_t i = 0; i < eps.size(); ++i) {
    const at::Tensor e = eps[i].to(at::kDouble);
    const at::Tensor xi = xi_old.empty() ? e : xi_old[i].to(at::kDouble) + e;
    out.grad.push_back((a * xi + c * e) * scale);
    out.xi_next.push_back(finished ? e : xi);
  }
  return out;
}

TensorList PersistentEs::combine(std::size_t pair, const std::vector<double>& delta, const TensorList& eps) {
  PesCombination r = pes_combine(delta, std::vector<double>(delta.size(), 1.0),
                                 std::vector<bool>(delta.size(), false), xi_[pair], eps, options_.sigma);
  xi_[pair] = std::move(r.xi_next);
  return std::move(r.grad);
}

}  // namespace hamlet::meta
