// Fuzz target: meta-training checkpoints, read by meta::load_checkpoint (what `hamlet meta-train --resume` reads).
//
// Structure-aware (h5_program.hpp explains why and the input format): the bytes are a program of groups, datasets
// and attributes written with H5Writer into a valid HDF5 file. A hamlet::Error is the expected answer to a bad file;
// a crash, a sanitizer report or any other exception type escaping load_checkpoint is a finding.
#include "h5_program.hpp"
#include "hamlet/meta/checkpoint.hpp"

using namespace hamlet;

namespace {

std::string g_path;

void run(const uint8_t* data, std::size_t size, bool strict) {
  fuzz::Cursor in(data, size);
  fuzz::write_program(in, g_path);
  try {
    meta::load_checkpoint(g_path);
  } catch (const Error&) {
    if (strict) throw;
  }
}

// A checkpoint as save_checkpoint writes it: two weights, best weights, Adam-like slots and a scalar, a curve.
std::string checkpoint_seed(int64_t epochs, int64_t curve_columns, bool with_slots) {
  fuzz::Encoder e;
  const auto write_list = [&](const std::string& group, const std::vector<at::Tensor>& xs) {
    e.attribute(group, "count", static_cast<int64_t>(xs.size()));
    for (std::size_t i = 0; i < xs.size(); ++i) e.dataset(group + "/" + std::to_string(i), xs[i], false);
  };
  const std::vector<at::Tensor> weights = {at::zeros({4, 3}, at::kDouble), at::zeros({4}, at::kDouble)};
  write_list("/weights", weights);
  write_list("/best_weights", weights);
  e.attribute("/meta_state", "step", epochs * 3);
  if (with_slots) {
    write_list("/meta_state/slots/m", weights);
    write_list("/meta_state/slots/v", weights);
    e.dataset("/meta_state/scalars/t", at::full({1}, 3.0, at::kDouble), true);
  }
  at::Tensor curve = at::zeros({epochs, curve_columns}, at::kDouble);
  for (int64_t i = 0; i < epochs; ++i) curve[i][0] = static_cast<double>(i + 1);
  e.dataset("/curve", curve, true);
  e.attribute("/", "epoch", epochs);
  e.attribute("/", "best_score", 0.5);
  e.attribute("/", "best_epoch", epochs);
  e.attribute("/", "initial_score", 1.0);
  e.attribute("/", "meta_steps", epochs * 3);
  e.attribute("/", "skipped_steps", int64_t{0});
  e.attribute("/", "cut_trajectories", int64_t{0});
  e.attribute("/", "architecture", std::string("phnn"));
  e.attribute("/", "config", std::string("hidden=16"));
  return e.bytes();
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  g_path = fuzz::scratch_file("checkpoint", ".h5");
  fuzz::maybe_write_seeds({{"valid_adam_state", checkpoint_seed(2, 8, true)},
                           {"valid_no_slots", checkpoint_seed(1, 8, false)},
                           {"valid_7_column_curve", checkpoint_seed(3, 7, true)}},
                          [](const uint8_t* d, std::size_t n) { run(d, n, true); });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  run(data, size, fuzz::strict());
  return 0;
}
