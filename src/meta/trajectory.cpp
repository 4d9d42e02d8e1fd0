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

at::Tensor meta_loss_term(const at::Tensor& f, const ScheduleOptions& schedule, double start_loss) {
  if (schedule.meta_loss == "log") return f.clamp_min(1e-30).log();
  if (schedule.meta_loss == "clipped") {
    const double bound = schedule.meta_loss_bound > 0 ? schedule.meta_loss_bound : start_loss;
    return at::where(f.isfinite(), f.clamp_max(bound), at::full_like(f, bound));
  }
  return f;
}

TrajectorySampler::TrajectorySampler(const tasks::Task& task, const ScheduleOptions& schedule, ProblemShare share,
                                     std::string device)
    : task_(task), schedule_(schedule), share_(share), device_(std::move(device)) {
  schedule_.validate();
  HAMLET_CHECK(share_.count >= 1 && share_.index >= 0 && share_.index < share_.count &&
                   schedule_.batch % share_.count == 0,
               "problem share ", share_.index, " of ", share_.count, " does not divide meta_train.batch ",
               schedule_.batch);
}

int64_t TrajectorySampler::episode_length(int64_t k) const {
  if (schedule_.truncation == "constant") return schedule_.horizon;
  at::Generator gen = make_generator(mix_seeds({schedule_.seed, kLengthStream, static_cast<uint64_t>(k)}));
  const double lo = std::log(static_cast<double>(schedule_.length_min));
  const double hi = std::log(static_cast<double>(schedule_.length_max));
  const double u = at::empty({1}, at::kDouble).uniform_(lo, hi, gen).item<double>();
  // ⌊e^u⌋ can round up to max at the top of the interval; the schedule's range is [min, max).
  return std::max(schedule_.length_min,
                  std::min(schedule_.length_max - 1, static_cast<int64_t>(std::floor(std::exp(u)))));
}

Episode TrajectorySampler::episode(int64_t epoch, int64_t index) const {
  Episode e;
  e.index = (epoch - 1) * schedule_.trajectories + index;
  const int64_t count = schedule_.batch / share_.count;
  const int64_t first = e.index * schedule_.batch + share_.index * count;
  // A distribution of tasks gives the episode one of its components; a plain task is its own.
  const tasks::Task& source = task_.episode_task(schedule_.seed, e.index);
  e.batch = source.sample(tasks::Split::kTrain, schedule_.seed, first, count, c10::Device(device_));
  if (schedule_.reparam > 0) e.batch = tasks::reparametrise(e.batch, schedule_.reparam, schedule_.seed, first);
  e.length = episode_length(e.index);
  if (schedule_.offset > 0) {
    at::Generator gen = make_generator(mix_seeds({schedule_.seed, kOffsetStream, static_cast<uint64_t>(e.index)}));
    const int64_t n0 = at::randint(schedule_.offset, {1}, gen, at::kLong).item<int64_t>();
    e.phase = n0 % schedule_.unroll;
  }
  e.seed = mix_seeds({schedule_.seed, kNoiseStream, static_cast<uint64_t>(e.index)});
  return e;
}

}  // namespace hamlet::meta
