// Weights files (io/weights_file.hpp): every field round-trips bitwise, committed files of schema version 0 still
// read, other kinds of file and newer versions are refused by name.
#include <filesystem>

#include "hamlet/core/error.hpp"
#include "hamlet/io/h5.hpp"
#include "hamlet/io/run_file.hpp"
#include "hamlet/io/schema.hpp"
#include "hamlet/io/weights_file.hpp"
#include "support/catch.hpp"
#include "support/test_support.hpp"

using namespace hamlet;

namespace {

io::WeightsRecord record() {
  io::WeightsRecord w;
  w.optimizer = "phnn";
  w.architecture = "phnn d=1 hidden=16";
  w.options = {{"hidden", "16"}, {"out_mul", "0.01"}};
  w.names = {"V.0.weight", "A.bias"};
  // float32 values: stored as float64, which holds them exactly.
  w.weights = {at::randn({16, 8}, at::kFloat), at::randn({3}, at::kDouble)};
  w.num_params = 131;
  w.provenance = {{"task", "quadratic"}, {"task_options", R"({"dim":"10"})"},
                  {"meta_train", R"({"epochs":"3","estimator":"es"})"}, {"best_score", "0.5"}};
  return w;
}

}  // namespace

TEST_CASE("weights file: every field round-trips, values bitwise") {
  test::TempDir dir;
  const std::string path = (dir / "w.h5").string();
  const io::WeightsRecord w = record();
  io::write_weights(path, w);
  const io::WeightsRecord back = io::read_weights(path);
  CHECK(back.schema_version == io::kWeightsFileSchema);
  CHECK(back.path == path);
  CHECK(back.optimizer == w.optimizer);
  CHECK(back.architecture == w.architecture);
  CHECK(back.options == w.options);
  CHECK(back.num_params == w.num_params);
  CHECK(back.provenance == w.provenance);
  // Names come back in HDF5's (alphabetical) order.
  REQUIRE(back.names == std::vector<std::string>{"A.bias", "V.0.weight"});
  CHECK(back.weights[0].scalar_type() == at::kDouble);
  CHECK(at::equal(back.weights[0], w.weights[1]));
  CHECK(at::equal(back.weights[1], w.weights[0].to(at::kDouble)));
  CHECK(at::equal(back.weights[1].to(at::kFloat), w.weights[0]));
  CHECK(io::provenance_options(back, "task_options") == OptionMap{{"dim", "10"}});
  CHECK(io::provenance_options(back, "meta_train").at("estimator") == "es");
  CHECK(io::provenance_options(back, "missing").empty());
  // Weights of this size stay contiguous (below kMinCompressedValues).
  const io::H5Reader raw(path);
  CHECK_FALSE(raw.layout("/weights/V.0.weight").chunked);
  CHECK_FALSE(raw.layout("/weights/A.bias").chunked);
  // Header only: names and attributes, no tensors.
  const io::WeightsRecord header = io::read_weights(path, io::WeightsPart::kProvenance);
  CHECK(header.names == back.names);
  CHECK(header.weights.empty());
  CHECK(header.optimizer == "phnn");
}

TEST_CASE("weights file: reserved provenance keys and mismatched lists are refused, nothing left behind") {
  test::TempDir dir;
  const std::string path = (dir / "w.h5").string();
  io::WeightsRecord w = record();
  for (const char* key : {"architecture", "schema_version", "content_checksum"}) {
    w.provenance = {{key, "x"}};
    CHECK_THROWS_WITH(io::write_weights(path, w), Catch::Contains("reserved"));
  }
  w = record();
  w.names.pop_back();
  CHECK_THROWS_WITH(io::write_weights(path, w), Catch::Contains("2 weights but 1 names"));
  CHECK_FALSE(std::filesystem::exists(path));
}

TEST_CASE("weights file: committed files of schema version 0 read (k=v and JSON, no checksum)") {
  const auto results = test::source_dir() / "results";
  // Written 2026-11-22: options and provenance as "k=v, k=v", meta_train without estimator.
  const io::WeightsRecord old = io::read_weights((results / "paper/full/weights/quadratic_phnn_seed2.h5").string());
  CHECK(old.schema_version == 0);
  CHECK(old.optimizer == "phnn");
  CHECK(old.num_params == 184);
  CHECK(old.options.at("mass") == "constant");
  CHECK(old.names.size() == 14);
  int64_t total = 0;
  for (const auto& t : old.weights) total += t.numel();
  CHECK(total == 184);
  CHECK(old.provenance.at("best_epoch") == "22");
  CHECK(io::provenance_options(old, "task_options").at("dim") == "10");
  const OptionMap meta = io::provenance_options(old, "meta_train");
  CHECK(meta.at("epochs") == "30");
  CHECK(meta.at("estimator") == "bptt");  // the only estimator before the option existed
  // JSON provenance (written after 2026-12-01).
  const io::WeightsRecord json = io::read_weights((results / "hnn/weights/mlp-lopt_seed1.h5").string());
  CHECK(json.schema_version == 0);
  CHECK(json.optimizer == "mlp-lopt");
  CHECK(json.options.at("hidden") == "4");
  CHECK(io::provenance_options(json, "meta_train").at("es.pairs") == "8");
}

TEST_CASE("weights file: a run file, a checkpoint or a newer version is refused by name") {
  test::TempDir dir;
  const std::string run = (dir / "run.h5").string();
  {
    io::RunRecord r;
    r.header.kind = "evaluate";
    io::RunFileWriter(run).write(r);
  }
  CHECK_THROWS_WITH(io::read_weights(run), Catch::Contains("a hamlet evaluate run file, not a weights file"));
  const std::string future = (dir / "future.h5").string();
  const io::WeightsRecord w = record();
  {
    io::H5Writer h(future);  // the same content at a newer version, with a valid checksum
    h.set_attribute("/", io::kSchemaVersionAttribute, io::kWeightsFileSchema + 1);
    h.write("/weights/A.bias", w.weights[1]);
    h.set_attribute("/", "optimizer", "phnn");
    h.set_attribute("/", "architecture", "phnn");
    h.set_attribute("/", "options", "{}");
    h.commit();
  }
  CHECK_THROWS_WITH(io::read_weights(future), Catch::Contains(future) && Catch::Contains("schema_version 2") &&
                                                  Catch::Contains("version 1 this hamlet reads"));
  CHECK_THROWS_WITH(io::read_weights((dir / "missing.h5").string()), Catch::Contains("missing.h5"));
}
