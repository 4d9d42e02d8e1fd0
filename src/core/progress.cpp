#include "hamlet/core/progress.hpp"

#include <spdlog/spdlog.h>

namespace hamlet {

Progress::Progress(std::string label, int64_t total, std::string unit, double interval_seconds, bool enabled)
    : label_(std::move(label)),
      unit_(std::move(unit)),
      total_(total),
      interval_(interval_seconds),
      enabled_(enabled),
      start_(std::chrono::steady_clock::now()),
      last_(start_) {}

double Progress::elapsed() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

void Progress::update(int64_t done) {
  if (!enabled_) return;
  const auto now = std::chrono::steady_clock::now();
  if (std::chrono::duration<double>(now - last_).count() < interval_) return;
  last_ = now;
  const double seconds = elapsed();
  const double rate = seconds > 0 ? static_cast<double>(done) / seconds : 0.0;
  const double eta = rate > 0 ? static_cast<double>(total_ - done) / rate : 0.0;
  spdlog::info("{}: {}/{} {} ({:.1f} {}/s, ETA {:.0f} s)", label_, done, total_, unit_, rate, unit_, eta);
}

}  // namespace hamlet
