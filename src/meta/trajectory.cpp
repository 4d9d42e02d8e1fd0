#include "hamlet/meta/trajectory.hpp"

#include <cmath>

#include "hamlet/core/error.hpp"
#include "hamlet/core/seed.hpp"
#include "hamlet/tasks/reparam.hpp"

namespace hamlet::meta {
namespace {

// Streams derived from the training seed; distinct tags keep lengths, offsets and perturbations independent.
constexpr uint64_t kLengthStream = 0x4C454E47;  // "LENG"
constexpr uint64_t kOffsetStream = 0x4F464653;  // "OFFS"
constexpr uint64_t kNoiseStream = 0x4E4F4953;   // "NOIS"

}  // namespace

int64_t Episode::window_last(int64_t t, int64_t unroll) const {
  // The grid closes a window after step s when (s + 1 + phase) is a multiple of U.
  const int64_t to_boundary = unroll - ((t + phase) % unroll);
  return std::min(t + to_boundary - 1, length - 1);
}

bool Episode::window_trains(int64_t last, int64_t unroll, bool train_tail) const {
  return (last + 1 + phase) % unroll == 0 || (train_tail && last + 1 == length);
}

Trajectory start_trajectory(const Episode& episode, const learned::LearnedOptimizer& optimizer) {
  Trajectory t;
  t.params = episode.batch->initial_params();
  t.state = optimizer.init(t.params);
  t.step = 0;
  return t;
}

optim::OptimizerState detach_state(const optim::OptimizerState& state) {
  optim::OptimizerState out;
  out.step = state.step;
  for (const auto& [name, list] : state.slots) out.slots[name] = detach_all(list);
  for (const auto& [name, value] : state.scalars) out.scalars[name] = value.detach();
  return out;
}

Trajectory detach_trajectory(const Trajectory& trajectory) {
  Trajectory out;
  out.params = detach_all(trajectory.params);
  out.state = detach_state(trajectory.state);
  out.step = trajectory.step;
  return out;
}

bool explodes(double mean_loss, double start_loss, double factor) {
  return factor > 0 && (!std::isfinite(mean_loss) || mean_loss > factor * start_loss);
}

at::Tensor meta_loss_term(const at::Tensor& f, const MetaTrainOptions& options, double start_loss) {
  if (options.meta_loss == "log") return f.clamp_min(1e-30).log();
  if (options.meta_loss == "clipped") {
    const double bound = options.meta_loss_bound > 0 ? options.meta_loss_bound : start_loss;
    return at::where(f.isfinite(), f.clamp_max(bound), at::full_like(f, bound));
  }
  return f;
}

TrajectorySampler::TrajectorySampler(const tasks::Task& task, const MetaTrainOptions& options)
    : task_(task), options_(options) {
  options_.validate();
}

int64_t TrajectorySampler::episode_length(int64_t k) const {
  if (options_.schedule == "constant") return options_.horizon;
  at::Generator gen = make_generator(mix_seeds({options_.seed, kLengthStream, static_cast<uint64_t>(k)}));
  const double lo = std::log(static_cast<double>(options_.schedule_min));
  const double hi = std::log(static_cast<double>(options_.schedule_max));
  const double u = at::empty({1}, at::kDouble).uniform_(lo, hi, gen).item<double>();
  // ⌊e^u⌋ can round up to max at the top of the interval; the schedule's range is [min, max).
  return std::max(options_.schedule_min,
                  std::min(options_.schedule_max - 1, static_cast<int64_t>(std::floor(std::exp(u)))));
}

Episode TrajectorySampler::episode(int64_t epoch, int64_t index) const {
  Episode e;
  e.index = (epoch - 1) * options_.trajectories + index;
  // bptt ranks each take an equal share of the episode's problems; es / pes ranks share pairs, not problems.
  const bool shard = options_.estimator == "bptt" && options_.world_size > 1;
  const int64_t count = shard ? options_.batch / options_.world_size : options_.batch;
  const int64_t first = e.index * options_.batch + (shard ? options_.rank * count : 0);
  e.batch = task_.sample(tasks::Split::kTrain, options_.seed, first, count, c10::Device(options_.device));
  if (options_.reparam > 0) e.batch = tasks::reparametrise(e.batch, options_.reparam, options_.seed, first);
  e.length = episode_length(e.index);
  if (options_.schedule_offset > 0) {
    at::Generator gen = make_generator(mix_seeds({options_.seed, kOffsetStream, static_cast<uint64_t>(e.index)}));
    const int64_t n0 = at::randint(options_.schedule_offset, {1}, gen, at::kLong).item<int64_t>();
    e.phase = n0 % options_.unroll;
  }
  e.seed = mix_seeds({options_.seed, kNoiseStream, static_cast<uint64_t>(e.index)});
  return e;
}

}  // namespace hamlet::meta
