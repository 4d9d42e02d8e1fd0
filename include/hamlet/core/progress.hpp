#pragma once
// A progress line for long loops: "<label>: 40/100 steps (12.3 steps/s, ETA 5 s)", logged through spdlog at
// most every `interval_seconds`, so short loops stay silent and long ones show rate and ETA.
#include <chrono>
#include <cstdint>
#include <string>

namespace hamlet {

class Progress {
 public:
  Progress(std::string label, int64_t total, std::string unit = "steps", double interval_seconds = 3.0,
           bool enabled = true);
  // Reports `done` units completed so far.
  void update(int64_t done);
  // Seconds since construction.
  double elapsed() const;

 private:
  std::string label_, unit_;
  int64_t total_;
  double interval_;
  bool enabled_;
  std::chrono::steady_clock::time_point start_, last_;
};

}  // namespace hamlet
