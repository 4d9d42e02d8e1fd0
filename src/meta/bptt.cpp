#include "hamlet/meta/bptt.hpp"

#include <torch/csrc/autograd/autograd.h>

#include "hamlet/meta/recompute.hpp"

namespace hamlet::meta {

TruncatedBptt::TruncatedBptt(const ScheduleOptions& schedule, const BpttOptions& options,
                             const parallel::DistributedOptions& parallel)
    : schedule_(schedule), options_(options) {
  schedule_.validate();
  options_.validate();
  check_rank_units("meta_train.batch", schedule_.batch, parallel.world_size,
                   "bptt gives every rank an equal share of each episode's problems");
}

void TruncatedBptt::start(const Episode& episode, learned::LearnedOptimizer& optimizer) {
  episode_ = episode;
  trajectory_ = start_trajectory(episode, optimizer);
  start_loss_ = 0;
  finished_ = episode.length <= 0;
}

MetaGradient TruncatedBptt::advance(learned::LearnedOptimizer& optimizer) {
  MetaGradient out;
  const int64_t first = trajectory_.step;
  const int64_t last = episode_.window_last(first, schedule_.unroll);
  const bool trained = episode_.window_trains(last, schedule_.unroll, schedule_.train_tail);
  const tasks::ProblemBatch& batch = *episode_.batch;
  TensorList& params = trajectory_.params;
  at::Tensor acc;
  for (int64_t t = first; t <= last; ++t) {
    TensorList theta = params;
    for (auto& p : theta) {
      if (!p.requires_grad()) p = p.detach().requires_grad_(true);
    }
    const at::Tensor f = batch.loss(theta, t);
    const double mean_f = f.detach().mean().item<double>();
    if (t == 0) start_loss_ = mean_f;
    if (explodes(mean_f, start_loss_, schedule_.explode_factor)) {
      out.cut = true;
      finished_ = true;
      return out;
    }
    const at::Tensor term = meta_loss_term(f, schedule_, start_loss_).mean();
    acc = acc.defined() ? acc + term : term;
    ++out.terms;
    TensorList g = torch::autograd::grad({f.sum()}, theta, {}, /*retain_graph=*/true,
                                         /*create_graph=*/options_.second_derivatives);
    if (!options_.second_derivatives) g = detach_all(g);
    optim::StepResult r = options_.recompute ? recomputed_update(optimizer, theta, g, f.detach(), trajectory_.state)
                                             : optimizer.update(theta, g, f.detach(), trajectory_.state);
    out.optimizee_steps += batch.size();
    params = std::move(r.params);
    trajectory_.state = std::move(r.state);
    trajectory_.step = t + 1;
  }
  finished_ = trajectory_.step >= episode_.length;
  if (trained) {
    if (schedule_.window_loss == "dm") {
      acc = acc + meta_loss_term(batch.loss(params, last + 1), schedule_, start_loss_).mean();
      ++out.terms;
    }
    const TensorList weights = optimizer.weights();
    if (acc.requires_grad()) {
      out.grads = torch::autograd::grad({acc}, weights, /*grad_outputs=*/{}, /*retain_graph=*/false,
                                        /*create_graph=*/false, /*allow_unused=*/true);
    } else {
      out.grads.resize(weights.size());  // nothing in the window reaches φ: every entry undefined
    }
    out.loss = acc;
    out.window = true;
  }
  // Truncation: the next window starts from new leaves with the same values.
  trajectory_ = detach_trajectory(trajectory_);
  return out;
}

}  // namespace hamlet::meta
