// Damaged meta-training checkpoints (found by tests/fuzz/fuzz_checkpoint): every one is a hamlet::Error naming the
// file, never undefined behaviour. The files are written with H5Writer in save_checkpoint's layout, so they carry a
// valid content checksum and only their content is wrong.
#include "support/catch.hpp"

#include <cmath>
#include <limits>

#include "hamlet/core/error.hpp"
#include "hamlet/io/h5.hpp"
#include "hamlet/meta/checkpoint.hpp"
#include "io/io_fixtures.hpp"
#include "support/test_support.hpp"

using namespace hamlet;

namespace {

void write_checkpoint(const std::string& path, const at::Tensor& curve, bool with_best_weights = true) {
  io::H5Writer w(path);
  w.set_attribute("/weights", "count", int64_t{1});
  w.write("/weights/0", at::zeros({3}, at::kDouble));
  if (with_best_weights) {
    w.set_attribute("/best_weights", "count", int64_t{1});
    w.write("/best_weights/0", at::zeros({3}, at::kDouble));
  }
  w.set_attribute("/meta_state", "step", int64_t{2});
  w.write("/curve", curve);
  test::write_checkpoint_attributes(w, 1, "hidden=16");
  w.commit();
}

at::Tensor curve_with(int64_t column, double value) {
  at::Tensor curve = at::zeros({2, 8}, at::kDouble);
  curve[0][0] = 1.0;
  curve[1][0] = 2.0;
  curve[1][column] = value;
  return curve;
}

}  // namespace

TEST_CASE("a checkpoint whose curve holds no count where a count belongs is an error naming the file") {
  test::TempDir dir;
  const std::string path = (dir / "ckpt.h5").string();
  write_checkpoint(path, curve_with(7, 3.0));
  const meta::Checkpoint ok = meta::load_checkpoint(path);
  CHECK(ok.progress.curve.size() == 2);
  CHECK(ok.progress.undefined_steps == 3);

  const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
  for (int64_t column : {0, 4, 5, 7}) {
    for (double bad : {nan, inf, -1.0, 2.5, 1e300, -9.3e18}) {
      INFO("column " << column << " value " << bad);
      write_checkpoint(path, curve_with(column, bad));
      CHECK_THROWS_WITH(meta::load_checkpoint(path), Catch::Contains(path) && Catch::Contains("not a count"));
    }
  }
}

TEST_CASE("a checkpoint without a group load_checkpoint reads is an error, not undefined behaviour") {
  test::TempDir dir;
  const std::string path = (dir / "ckpt.h5").string();
  write_checkpoint(path, curve_with(7, 0.0), /*with_best_weights=*/false);
  CHECK_THROWS_WITH(meta::load_checkpoint(path), Catch::Contains(path) && Catch::Contains("/best_weights"));
}
