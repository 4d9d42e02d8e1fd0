#include "hamlet/optim/ecdsep.hpp"

#include <cmath>
#include <limits>

#include "common.hpp"
#include "hamlet/core/error.hpp"
#include "hamlet/core/seed.hpp"

namespace hamlet::optim {
namespace {

const char* const kOwner = "ecdsep";

at::Tensor select(const at::Tensor& mask, const at::Tensor& a, const at::Tensor& b) {
  return at::where(detail::per_problem(mask, a), a, b);
}

}  // namespace

// η < 1 is outside the range the original supports ("It has to be >= 1").
const OptionSpec<EcdsepOptions>& EcdsepOptions::spec() {
  using O = EcdsepOptions;
  static const auto s =
      OptionSpec<O>("ecdsep")
          .add("lr", &O::lr, "time step dt", checks::positive)
          .add("eta", &O::eta, "concentration exponent, >= 1", checks::in_range(1.0, std::numeric_limits<double>::infinity()))
          .add("F0", &O::F0, "expected minimum of the loss", checks::finite)
          .add("eps1", &O::eps1, "skip the energy rescale if it would change p^2 by less than this", checks::non_negative)
          .add("eps2", &O::eps2, "skip the step unless V > eps2", checks::non_negative)
          .add("deltaEn", &O::deltaEn, "initial |p|^2 (forced to 1 when s != 1)", checks::non_negative)
          .add("nu", &O::nu, "amplitude of the direction noise", checks::non_negative)
          .add("s", &O::s, "kinetic regulariser in ln(s + |p|^2)", checks::non_negative)
          .add("weight_decay", &O::weight_decay, "L2 term wd/2 |q|^2 added to the loss (energy-conserving)",
               checks::non_negative)
          .add("consEn", &O::consEn, "rescale p onto the initial energy shell every step")
          .add("seed", &O::seed, "seed of the direction-noise stream");
  return s;
}

OptimizerState Ecdsep::init(const TensorList& params) const {
  const int64_t b = detail::batch_size(kOwner, params);
  const auto opts = params[0].options().requires_grad(false);
  OptimizerState s;
  s.slots["p"] = detail::zeros_like_all(params);
  s.scalars["expE"] = at::zeros({b}, opts);
  s.scalars["p2"] = at::zeros({b}, opts);
  s.scalars["iteration"] = at::zeros({b}, opts);
  return s;
}

StepResult Ecdsep::update(const TensorList& params, const TensorList& grads, const at::Tensor& loss,
                          const OptimizerState& state) const {
  const EcdsepOptions& o = options_;
  detail::check_update_args(kOwner, params, grads);
  const int64_t batch = detail::batch_size(kOwner, params);
  HAMLET_CHECK(loss.defined(), kOwner, ": update() needs the per-problem loss (needs_loss() is true)");
  HAMLET_CHECK(loss.dim() == 1 && loss.size(0) == batch, kOwner, ": loss must be [B] = [", batch, "], got ",
               loss.sizes());
  const TensorList& p_in = detail::slot(kOwner, state, "p", params.size());
  const at::Tensor& exp_e_in = detail::scalar(kOwner, state, "expE");
  const at::Tensor& p2_in = detail::scalar(kOwner, state, "p2");
  const at::Tensor& iter_in = detail::scalar(kOwner, state, "iteration");

  const at::Tensor f = loss.to(params[0].device(), params[0].scalar_type());
  const at::Tensor ones = at::ones_like(f);
  const at::Tensor zeros = at::zeros_like(f);
  const double s = o.s;
  const double delta_en = o.effective_delta_en();
  const double wd = o.weight_decay;

  // Potential and the per-problem skip decision. F_eff − F0 ≤ 0 is tested explicitly rather than relying on
  // (negative)^η turning into NaN as in the original; masked-out entries get harmless stand-ins so that no NaN or
  // inf is produced even in lanes that where() discards.
  const at::Tensor q2 = wd != 0.0 ? per_problem_sum_sq(params) : zeros;
  const at::Tensor gap = f + 0.5 * wd * q2 - o.F0;
  const at::Tensor positive = gap > 0;
  const at::Tensor gap_safe = at::where(positive, gap, ones);
  const at::Tensor v = at::where(positive, gap_safe.pow(o.eta), zeros);
  const at::Tensor active = positive & (v > o.eps2);
  const at::Tensor v_safe = at::where(active, v, ones);

  // Initialisation of problems whose counter is still 0 (again after a skipped first call, as in the original).
  const at::Tensor first = iter_in == 0;
  const at::Tensor exp_e0 = at::exp(at::log(v_safe) + std::log(s + delta_en));
  const at::Tensor g2 = detail::sum_sq_where_defined(grads, grads, f);
  const at::Tensor has_g = g2 > 0;
  // ‖g0‖ = 0 would give NaN momenta in the original; hamlet starts from p = 0 then.
  const at::Tensor init_scale = at::where(has_g, (delta_en / at::where(has_g, g2, ones)).sqrt(), zeros);
  const at::Tensor exp_e = at::where(first, exp_e0, exp_e_in);
  const at::Tensor p2_start = at::where(first, at::where(has_g, at::full_like(f, delta_en), zeros), p2_in);
  TensorList p(params.size());
  for (std::size_t i = 0; i < params.size(); ++i) {
    p[i] = grads[i].defined() ? select(first, -grads[i] * detail::per_problem(init_scale, grads[i]), p_in[i]) : p_in[i];
  }

  // Rescale onto the energy shell fixed at initialisation; c = 1 in the cases where the original does not rescale.
  at::Tensor c = ones;
  if (o.consEn) {
    const at::Tensor p2_true = exp_e / v_safe - s;
    const at::Tensor keep = ((p2_true - p2_start).abs() < o.eps1) | (p2_true < 0) | (p2_start == 0);
    c = at::where(keep, ones, (p2_true / at::where(keep, ones, p2_start)).sqrt());
  }

  // Kick with the full step, then drift with the new momentum: the code's symplectic Euler, not the notes'
  // leapfrog.
  const at::Tensor kick = (o.lr * o.eta) / gap_safe;
  TensorList p_kick(params.size());
  for (std::size_t i = 0; i < params.size(); ++i) {
    if (!grads[i].defined()) continue;
    const at::Tensor force = wd != 0.0 ? grads[i] + wd * params[i] : grads[i];
    p_kick[i] = detail::per_problem(c, p[i]) * p[i] - detail::per_problem(kick, force) * force;
  }
  const at::Tensor p2_kick = detail::sum_sq_where_defined(p_kick, grads, f);
  // s = 0 with p = 0 would divide 0 by 0; the drift is zero there anyway.
  const at::Tensor denom = s + p2_kick;
  const at::Tensor drift = (2.0 * o.lr) / at::where(denom > 0, denom, ones);
  TensorList q_new(params.size());
  for (std::size_t i = 0; i < params.size(); ++i) {
    if (grads[i].defined()) q_new[i] = params[i] + detail::per_problem(drift, p_kick[i]) * p_kick[i];
  }

  // Direction noise: rotates p, keeps ‖p‖. Skipped where ‖p‖ = 0 (the original divides by zero there).
  TensorList p_out_active = p_kick;
  at::Tensor p2_out_active = p2_kick;
  if (o.nu != 0.0) {
    const at::Tensor pnorm = p2_kick.sqrt();
    const at::Tensor has_p = pnorm > 0;
    const at::Tensor pnorm_safe = at::where(has_p, pnorm, ones);
    at::Generator gen = make_generator(mix_seeds({static_cast<uint64_t>(o.seed), static_cast<uint64_t>(state.step)}));
    TensorList u(params.size());
    for (std::size_t i = 0; i < params.size(); ++i) {
      if (!grads[i].defined()) continue;
      // Drawn on the CPU so the stream is the same on every device.
      const at::Tensor z =
          at::randn(p_kick[i].sizes(), gen, at::TensorOptions().dtype(p_kick[i].scalar_type())).to(p_kick[i].device());
      u[i] = p_kick[i] / detail::per_problem(pnorm_safe, p_kick[i]) + o.nu * z;
    }
    const at::Tensor u2 = detail::sum_sq_where_defined(u, grads, f);
    const at::Tensor ok = has_p & (u2 > 0);
    const at::Tensor scale = pnorm / at::where(ok, u2, ones).sqrt();
    for (std::size_t i = 0; i < params.size(); ++i) {
      if (grads[i].defined()) p_out_active[i] = select(ok, detail::per_problem(scale, u[i]) * u[i], p_kick[i]);
    }
    p2_out_active = at::where(ok, pnorm * pnorm, p2_kick);
  }

  // Skipped problems keep their parameters and their incoming state.
  StepResult r;
  r.state = state;
  TensorList p_next(params.size());
  for (std::size_t i = 0; i < params.size(); ++i) {
    if (!grads[i].defined()) {
      r.params.push_back(params[i]);
      p_next[i] = p_in[i];
      continue;
    }
    r.params.push_back(select(active, q_new[i], params[i]));
    p_next[i] = select(active, p_out_active[i], p_in[i]);
  }
  r.state.slots["p"] = std::move(p_next);
  r.state.scalars["expE"] = at::where(active, exp_e, exp_e_in);
  r.state.scalars["p2"] = at::where(active, p2_out_active, p2_in);
  r.state.scalars["iteration"] = iter_in + active.to(iter_in.scalar_type());
  ++r.state.step;

  const at::Tensor nan = at::full_like(f, std::numeric_limits<double>::quiet_NaN());
  r.diagnostics["energy"] = at::where(positive, at::log(s + p2_start) + o.eta * at::log(gap_safe), nan);
  r.diagnostics["frozen"] = (~active).to(f.scalar_type());
  r.diagnostics["rescale"] = at::where(active, c, ones);
  return r;
}

}  // namespace hamlet::optim
