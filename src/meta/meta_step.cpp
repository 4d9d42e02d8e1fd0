#include "hamlet/meta/meta_step.hpp"

#include <ATen/ATen.h>

#include <cmath>

#include "hamlet/core/options.hpp"
#include "hamlet/optim/registry.hpp"

namespace hamlet::meta {

MetaOptimizerStep::MetaOptimizerStep(double meta_lr, double clip)
    : adam_(optim::make_optimizer("adam", {{"lr", format_number(meta_lr)}})), clip_(clip) {}

void MetaOptimizerStep::init(const TensorList& weights) { state_ = adam_->init(weights); }

MetaStepOutcome MetaOptimizerStep::apply(learned::LearnedOptimizer& optimizer, const MetaGradient& gradient) {
  MetaStepOutcome s;
  const TensorList weights = optimizer.weights();
  bool any = false;
  for (const auto& g : gradient.grads) any = any || g.defined();
  s.loss = gradient.loss.defined() ? gradient.loss.item<double>() : gradient.meta_loss;
  if (!any) {
    // An Adam step on zeros would still move φ through the moment estimates.
    s.kind = MetaStepOutcome::Kind::kUndefined;
    return s;
  }
  TensorList grads = gradient.grads;
  for (std::size_t i = 0; i < grads.size(); ++i) {
    if (!grads[i].defined()) grads[i] = at::zeros_like(weights[i]);
  }
  double sq = 0;
  for (const auto& g : grads) sq += g.to(at::kDouble).pow(2).sum().item<double>();
  s.grad_norm = std::sqrt(sq);
  if (!std::isfinite(s.loss) || !std::isfinite(s.grad_norm)) {
    s.kind = MetaStepOutcome::Kind::kNonFinite;
    return s;
  }
  if (clip_ > 0 && s.grad_norm > clip_) {
    const double scale = clip_ / s.grad_norm;
    for (auto& g : grads) g = g * scale;
  }
  optim::StepResult r;
  {
    at::NoGradGuard no_grad;
    r = adam_->update(detach_all(weights), grads, at::Tensor(), state_);
  }
  state_ = std::move(r.state);
  optimizer.set_weights(r.params);
  optimizer.set_trainable(true);
  s.kind = MetaStepOutcome::Kind::kTaken;
  s.meta_loss = s.loss / static_cast<double>(gradient.terms);
  return s;
}

}  // namespace hamlet::meta
