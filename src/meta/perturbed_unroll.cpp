#include "hamlet/meta/perturbed_unroll.hpp"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/autograd.h>

namespace hamlet::meta {

double MemberWindow::sum() const {
  double s = 0;
  for (double x : terms) s += x;
  return s;
}

MemberWindow run_member(const learned::LearnedOptimizer& optimizer, const tasks::ProblemBatch& batch,
                        Trajectory& trajectory, int64_t last, double start_loss, const MetaTrainOptions& options) {
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
    if (explodes(mean_f, start_loss, options.explode_factor)) {
      out.exploded = true;
      return out;
    }
    out.terms.push_back(meta_loss_term(f.detach(), options, start_loss).mean().item<double>());
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
  if (options.window_loss == "dm") {
    at::NoGradGuard no_grad;
    out.terms.push_back(meta_loss_term(batch.loss(trajectory.params, last + 1), options, start_loss).mean().item<double>());
  }
  return out;
}

PairRange owned_pairs(const MetaTrainOptions& options) {
  PairRange r;
  r.count = static_cast<std::size_t>(options.es_pairs / options.world_size);
  r.first = static_cast<std::size_t>(options.rank) * r.count;
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

}  // namespace hamlet::meta
