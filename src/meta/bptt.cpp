#include "hamlet/meta/bptt.hpp"

#include <torch/csrc/autograd/autograd.h>

#include <algorithm>
#include <cmath>
#include <deque>

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

bool TruncatedBptt::run_step(learned::LearnedOptimizer& optimizer, TensorList& params,
                             optim::OptimizerState& state, int64_t t, at::Tensor& acc, MetaGradient* counts) {
  // With autograd off (a checkpointed stretch's first run) nothing is recorded: θ_t is always a fresh leaf and only
  // the gradient g_t is taken locally; with autograd on the step joins the window's graph as it always did.
  const bool graph = at::GradMode::is_enabled();
  const tasks::ProblemBatch& batch = *episode_.batch;
  TensorList theta = params;
  at::Tensor f;
  TensorList g;
  {
    at::AutoGradMode enable(true);
    for (auto& p : theta) {
      if (!graph || !p.requires_grad()) p = p.detach().requires_grad_(true);
    }
    f = batch.loss(theta, t);
    g = torch::autograd::grad({f.sum()}, theta, {}, /*retain_graph=*/graph,
                              /*create_graph=*/graph && options_.second_derivatives);
  }
  if (!(graph && options_.second_derivatives)) g = detach_all(g);
  const double mean_f = f.detach().mean().item<double>();
  if (counts != nullptr && t == 0) start_loss_ = mean_f;
  if (explodes(mean_f, start_loss_, schedule_.explode_factor)) {
    if (counts != nullptr) counts->cut = true;
    return false;
  }
  const at::Tensor term = meta_loss_term(graph ? f : f.detach(), schedule_, start_loss_).mean();
  acc = acc.defined() ? acc + term : term;
  if (counts != nullptr) {
    ++counts->terms;
    counts->optimizee_steps += batch.size();
  }
  // A checkpointed stretch's first run steps in the problem groups its replay's nodes use (recompute.hpp), so both
  // compute the same values.
  optim::StepResult r = !options_.recompute ? optimizer.update(theta, g, f.detach(), state)
                        : graph             ? recomputed_update(optimizer, theta, g, f.detach(), state)
                                            : update_in_groups(optimizer, theta, g, f.detach(), state);
  params = std::move(r.params);
  state = std::move(r.state);
  return true;
}

MetaGradient TruncatedBptt::advance(learned::LearnedOptimizer& optimizer) {
  MetaGradient out;
  const int64_t first = trajectory_.step;
  const int64_t last = episode_.window_last(first, schedule_.unroll);
  const bool trained = episode_.window_trains(last, schedule_.unroll, schedule_.train_tail);
  TensorList& params = trajectory_.params;
  at::Tensor acc;
  // With recompute the window runs in stretches of ⌈√n⌉ steps, each one checkpointed node (recompute.hpp); the
  // bodies must live until the meta-backward below has replayed them.
  const int64_t n = last - first + 1;
  const int64_t stretch = options_.recompute ? static_cast<int64_t>(std::ceil(std::sqrt(static_cast<double>(n)))) : n;
  std::deque<SegmentBody> bodies;
  for (int64_t begin = first; begin <= last;) {
    const int64_t end = std::min(last, begin + stretch - 1);
    if (!options_.recompute) {
      for (int64_t t = begin; t <= end; ++t) {
        if (!run_step(optimizer, params, trajectory_.state, t, acc, &out)) break;
        trajectory_.step = t + 1;
      }
    } else {
      bodies.emplace_back([this, &optimizer, &out, begin, end](const TensorList& p0, const optim::OptimizerState& s0,
                                                               bool replay) {
        SegmentResult r{p0, s0, at::Tensor()};
        for (int64_t t = begin; t <= end; ++t) {
          if (!run_step(optimizer, r.params, r.state, t, r.loss, replay ? nullptr : &out)) break;
        }
        if (!r.loss.defined()) r.loss = at::zeros({}, p0.front().options());
        return r;
      });
      SegmentResult r = checkpointed_segment(optimizer, params, trajectory_.state, bodies.back());
      params = std::move(r.params);
      trajectory_.state = std::move(r.state);
      acc = acc.defined() ? acc + r.loss : r.loss;
      if (!out.cut) trajectory_.step = end + 1;
    }
    if (out.cut) {
      finished_ = true;
      return out;
    }
    begin = end + 1;
  }
  finished_ = trajectory_.step >= episode_.length;
  if (trained) {
    if (schedule_.window_loss == "dm") {
      acc = acc + meta_loss_term(episode_.batch->loss(params, last + 1), schedule_, start_loss_).mean();
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
