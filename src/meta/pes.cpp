#include "hamlet/meta/pes.hpp"

#include <ATen/ATen.h>

#include <cmath>

#include "hamlet/core/seed.hpp"
#include "hamlet/meta/perturbed_unroll.hpp"

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

void PersistentEs::start(const Episode& episode, learned::LearnedOptimizer& optimizer) {
  episode_ = episode;
  generator_ = make_generator(episode.seed);
  const Trajectory t0 = start_trajectory(episode, optimizer);
  positive_.assign(static_cast<std::size_t>(options_.es_pairs), t0);
  negative_.assign(static_cast<std::size_t>(options_.es_pairs), t0);
  xi_.assign(static_cast<std::size_t>(options_.es_pairs), TensorList());
  {
    at::NoGradGuard no_grad;
    start_loss_ = episode.batch->loss(t0.params, 0).mean().item<double>();
  }
  step_ = 0;
  finished_ = episode.length <= 0;
}

MetaGradient PersistentEs::advance(learned::LearnedOptimizer& optimizer) {
  MetaGradient out;
  const int64_t first = step_, last = episode_.window_last(first, options_.unroll);
  if (!episode_.window_trains(last, options_.unroll, options_.train_tail)) {
    finished_ = true;  // the partial last window trains nothing (as for bptt)
    return out;
  }
  const TensorList held = optimizer.weights();
  const TensorList phi = detach_all(held);
  const double pairs = static_cast<double>(options_.es_pairs);
  TensorList grad;
  const PairRange mine = owned_pairs(options_);
  for (std::size_t i = 0; i < positive_.size(); ++i) {
    // Every rank draws every pair's perturbation, so pair i sees the same ε whichever rank runs it.
    const TensorList eps = sample_perturbation(phi, options_.es_sigma, generator_);
    if (!mine.contains(i)) continue;
    optimizer.set_weights(perturbed(phi, eps, 1.0));
    const MemberWindow p =
        run_member(optimizer, *episode_.batch, positive_[i], last, start_loss_, options_);
    optimizer.set_weights(perturbed(phi, eps, -1.0));
    const MemberWindow m =
        run_member(optimizer, *episode_.batch, negative_[i], last, start_loss_, options_);
    out.optimizee_steps += (p.steps + m.steps) * options_.batch;
    if (p.exploded || m.exploded) {
      optimizer.set_weights(held);
      out.cut = true;
      finished_ = true;
      return out;
    }
    std::vector<double> delta(p.terms.size());
    for (std::size_t s = 0; s < delta.size(); ++s) delta[s] = p.terms[s] - m.terms[s];
    PesCombination r = pes_combine(delta, std::vector<double>(delta.size(), 1.0),
                                   std::vector<bool>(delta.size(), false), xi_[i], eps, options_.es_sigma);
    // pes_combine averages over the window's steps; the window loss is their sum.
    add_scaled(grad, r.grad, static_cast<double>(delta.size()) / pairs);
    xi_[i] = std::move(r.xi_next);
    out.meta_loss += 0.5 * (p.sum() + m.sum()) / pairs;
    out.delta_abs_mean += std::abs(p.sum() - m.sum()) / pairs;
    out.terms = static_cast<int64_t>(delta.size());
  }
  optimizer.set_weights(held);
  for (std::size_t i = 0; i < grad.size(); ++i) out.grads.push_back(grad[i].to(held[i].device(), held[i].scalar_type()));
  out.window = true;
  step_ = last + 1;
  finished_ = step_ >= episode_.length;
  return out;
}

}  // namespace hamlet::meta
