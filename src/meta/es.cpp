#include "hamlet/meta/es.hpp"

#include <ATen/ATen.h>

#include <cmath>

#include "hamlet/core/seed.hpp"
#include "hamlet/meta/perturbed_unroll.hpp"

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

void TruncatedEs::start(const Episode& episode, learned::LearnedOptimizer& optimizer) {
  episode_ = episode;
  generator_ = make_generator(episode.seed);
  carried_.assign(static_cast<std::size_t>(options_.es_pairs), start_trajectory(episode, optimizer));
  {
    at::NoGradGuard no_grad;
    start_loss_ = episode.batch->loss(carried_.front().params, 0).mean().item<double>();
  }
  step_ = 0;
  finished_ = episode.length <= 0;
}

MetaGradient TruncatedEs::advance(learned::LearnedOptimizer& optimizer) {
  MetaGradient out;
  const int64_t first = step_, last = episode_.window_last(first, options_.unroll);
  if (!episode_.window_trains(last, options_.unroll, options_.train_tail)) {
    // The partial last window trains nothing, so its forward passes are not run.
    finished_ = true;
    return out;
  }
  const TensorList held = optimizer.weights();
  const TensorList phi = detach_all(held);
  const double pairs = static_cast<double>(options_.es_pairs);
  TensorList grad;
  const PairRange mine = owned_pairs(options_);
  for (std::size_t i = 0; i < carried_.size(); ++i) {
    // Every rank draws every pair's perturbation, so pair i sees the same ε whichever rank runs it.
    const TensorList eps = sample_perturbation(phi, options_.es_sigma, generator_);
    if (!mine.contains(i)) continue;
    Trajectory& carried = carried_[i];
    Trajectory plus = carried, minus = carried;
    optimizer.set_weights(perturbed(phi, eps, 1.0));
    const MemberWindow p = run_member(optimizer, *episode_.batch, plus, last, start_loss_, options_);
    optimizer.set_weights(perturbed(phi, eps, -1.0));
    const MemberWindow m =
        run_member(optimizer, *episode_.batch, minus, last, start_loss_, options_);
    out.optimizee_steps += (p.steps + m.steps) * options_.batch;
    if (p.exploded || m.exploded) {
      optimizer.set_weights(held);
      out.cut = true;
      finished_ = true;
      return out;
    }
    std::vector<double> delta(p.terms.size());
    for (std::size_t s = 0; s < delta.size(); ++s) delta[s] = p.terms[s] - m.terms[s];
    // es_combine averages over the window's steps; the window loss is their sum.
    const double terms = static_cast<double>(delta.size());
    add_scaled(grad, es_combine(delta, std::vector<double>(delta.size(), 1.0), eps, options_.es_sigma),
               terms / pairs);
    out.meta_loss += 0.5 * (p.sum() + m.sum()) / pairs;
    out.delta_abs_mean += std::abs(p.sum() - m.sum()) / pairs;
    out.terms = static_cast<int64_t>(delta.size());
    carried = std::move(plus);
  }
  optimizer.set_weights(held);
  for (std::size_t i = 0; i < grad.size(); ++i) out.grads.push_back(grad[i].to(held[i].device(), held[i].scalar_type()));
  out.window = true;
  step_ = last + 1;
  finished_ = step_ >= episode_.length;
  return out;
}

}  // namespace hamlet::meta
