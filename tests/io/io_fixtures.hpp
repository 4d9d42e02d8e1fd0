#pragma once
// Shared fixtures for tests that write checkpoint files by hand (tests/io, tests/meta): the root attributes of
// save_checkpoint's layout, so that each test writes only the groups its case is about.
#include <cstdint>
#include <string>

#include "hamlet/io/h5.hpp"

namespace hamlet::test {

// Every counter (epoch, best_epoch, meta_steps, skipped_steps, cut_trajectories) = `counter`, best_score 0.5,
// initial_score 1, architecture "phnn" and the given config text.
inline void write_checkpoint_attributes(io::H5Writer& w, int64_t counter, const std::string& config) {
  for (const char* name : {"epoch", "best_epoch", "meta_steps", "skipped_steps", "cut_trajectories"}) {
    w.set_attribute("/", name, counter);
  }
  w.set_attribute("/", "best_score", 0.5);
  w.set_attribute("/", "initial_score", 1.0);
  w.set_attribute("/", "architecture", "phnn");
  w.set_attribute("/", "config", config);
}

}  // namespace hamlet::test
