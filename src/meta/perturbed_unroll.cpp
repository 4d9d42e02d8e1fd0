#include "hamlet/meta/perturbed_unroll.hpp"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/autograd.h>

#include <cmath>

#include "hamlet/core/seed.hpp"

namespace hamlet::meta {

double MemberWindow::sum() const {
  double s = 0;
  for (double x : terms) s += x;
  return s;
}

MemberWindow run_member(const learned::LearnedOptimizer& optimizer, const tasks::ProblemBatch& batch,
                        Trajectory& trajectory, int64_t last, double start_loss, const ScheduleOptions& schedule) {
  MemberWindow out;
  for (int64_t t = trajectory.step; t <= last; ++t) {
    const TensorList theta = fresh_leaves(trajectory.params);
    at::Tensor f;
    TensorList g;
    {
      // The optimizee gradient needs autograd over θ only; φ is not involved here.
      at::AutoGradMode enable(true);
      f = batch.loss(theta, t);
      g = torch::autograd::grad({f.sum()}, theta);
    }
    const double mean_f = f.detach().mean().item<double>();
    if (explodes(mean_f, start_loss, schedule.explode_factor)) {
      out.exploded = true;
      return out;
    }
    out.terms.push_back(meta_loss_term(f.detach(), schedule, start_loss).mean().item<double>());
    optim::StepResult r;
    {
      at::NoGradGuard no_grad;
      r = optimizer.update(detach_all(theta), detach_all(g), f.detach(), trajectory.state);
    }
    trajectory.params = detach_all(r.params);
    trajectory.state = detach_state(r.state);
    trajectory.step = t + 1;
    ++out.steps;
  }
  if (schedule.window_loss == "dm") {
    at::NoGradGuard no_grad;
    out.terms.push_back(meta_loss_term(batch.loss(trajectory.params, last + 1), schedule, start_loss).mean().item<double>());
  }
  return out;
}

PairRange owned_pairs(int64_t pairs, const parallel::DistributedOptions& parallel) {
  PairRange r;
  r.count = static_cast<std::size_t>(pairs / parallel.world_size);
  r.first = static_cast<std::size_t>(parallel.rank) * r.count;
  return r;
}

TensorList sample_perturbation(const TensorList& like, double sigma, at::Generator& generator) {
  TensorList out;
  for (const auto& w : like) out.push_back(at::normal(0.0, sigma, w.sizes(), generator, at::kDouble));
  return out;
}

TensorList perturbed(const TensorList& phi, const TensorList& eps, double scale) {
  at::NoGradGuard no_grad;
  TensorList out;
  for (std::size_t i = 0; i < phi.size(); ++i) {
    const at::Tensor base = phi[i].detach();
    out.push_back((base.to(at::kDouble).cpu() + scale * eps[i]).to(base.device(), base.scalar_type()));
  }
  return out;
}

void add_scaled(TensorList& acc, const TensorList& x, double scale) {
  if (acc.empty()) {
    for (const auto& v : x) acc.push_back(at::zeros(v.sizes(), at::kDouble));
  }
  for (std::size_t i = 0; i < x.size(); ++i) acc[i].add_(x[i].to(at::kDouble), scale);
}

AntitheticEstimator::AntitheticEstimator(const ScheduleOptions& schedule, const EsOptions& options,
                                         const parallel::DistributedOptions& parallel, const std::string& name)
    : schedule_(schedule), options_(options), name_(name) {
  schedule_.validate();
  options_.validate();
  check_rank_units("meta_train.es.pairs", options_.pairs, parallel.world_size,
                   name + " gives every rank an equal share of the antithetic pairs");
  mine_ = owned_pairs(options_.pairs, parallel);
}

void AntitheticEstimator::start(const Episode& episode, learned::LearnedOptimizer& optimizer) {
  episode_ = episode;
  generator_ = make_generator(episode.seed);
  const Trajectory t0 = start_trajectory(episode, optimizer);
  positive_.assign(static_cast<std::size_t>(options_.pairs), t0);
  negative_.assign(static_cast<std::size_t>(options_.pairs), t0);
  {
    at::NoGradGuard no_grad;
    start_loss_ = episode.batch->loss(t0.params, 0).mean().item<double>();
  }
  step_ = 0;
  finished_ = episode.length <= 0;
  on_start();
}

MemberWindow AntitheticEstimator::run_perturbed(learned::LearnedOptimizer& optimizer, const TensorList& phi,
                                                const TensorList& eps, double sign, Trajectory& trajectory,
                                                int64_t last) const {
  learned::WeightSwap swap(optimizer, perturbed(phi, eps, sign));
  return run_member(optimizer, *episode_.batch, trajectory, last, start_loss_, schedule_);
}

MetaGradient AntitheticEstimator::advance(learned::LearnedOptimizer& optimizer) {
  MetaGradient out;
  const int64_t first = step_, last = episode_.window_last(first, schedule_.unroll);
  if (!episode_.window_trains(last, schedule_.unroll, schedule_.train_tail)) {
    // The partial last window trains nothing, so its forward passes are not run.
    finished_ = true;
    return out;
  }
  const TensorList held = optimizer.weights();
  const TensorList phi = detach_all(held);
  const double pairs = static_cast<double>(options_.pairs);
  TensorList grad;
  for (std::size_t i = 0; i < positive_.size(); ++i) {
    // Every rank draws every pair's perturbation, so pair i sees the same ε whichever rank runs it.
    const TensorList eps = sample_perturbation(phi, options_.sigma, generator_);
    if (!mine_.contains(i)) continue;
    const MemberWindow p = run_perturbed(optimizer, phi, eps, 1.0, positive_[i], last);
    const MemberWindow m = run_perturbed(optimizer, phi, eps, -1.0, negative_[i], last);
    out.optimizee_steps += (p.steps + m.steps) * schedule_.batch;
    if (p.exploded || m.exploded) {
      out.cut = true;
      finished_ = true;
      return out;
    }
    std::vector<double> delta(p.terms.size());
    for (std::size_t s = 0; s < delta.size(); ++s) delta[s] = p.terms[s] - m.terms[s];
    // combine() averages over the window's steps; the window loss is their sum.
    add_scaled(grad, combine(i, delta, eps), static_cast<double>(delta.size()) / pairs);
    out.meta_loss += 0.5 * (p.sum() + m.sum()) / pairs;
    out.delta_abs_mean += std::abs(p.sum() - m.sum()) / pairs;
    out.terms = static_cast<int64_t>(delta.size());
    after_pair(i);
  }
  for (std::size_t i = 0; i < grad.size(); ++i) out.grads.push_back(grad[i].to(held[i].device(), held[i].scalar_type()));
  out.window = true;
  step_ = last + 1;
  finished_ = step_ >= episode_.length;
  return out;
}

}  // namespace hamlet::meta
