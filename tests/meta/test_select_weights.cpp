#include <nlohmann/json.hpp>

#include <cmath>

#include "hamlet/core/error.hpp"
#include "hamlet/core/options_json.hpp"
#include "hamlet/interop/learned_files.hpp"
#include "hamlet/io/h5.hpp"
#include "hamlet/io/weights_file.hpp"
#include "hamlet/learned/registry.hpp"
#include "hamlet/meta/select_weights.hpp"
#include "support/catch.hpp"
#include "support/test_support.hpp"

using namespace hamlet;

namespace {

// A weights file as hamlet wrote them before schema_version (options as "k=v, k=v" text).
void write_version_0(const std::string& path, const io::WeightsRecord& record) {
  io::H5Writer w(path);
  for (std::size_t i = 0; i < record.names.size(); ++i) w.write("/weights/" + record.names[i], record.weights[i]);
  w.set_attribute("/", "optimizer", record.optimizer);
  w.set_attribute("/", "architecture", record.architecture);
  w.set_attribute("/", "options", format_options(record.options));
  w.set_attribute("/", "num_params", record.num_params);
  for (const auto& [key, value] : record.provenance) w.set_attribute("/", key, value);
  w.commit();
}

// A phnn weight file with the provenance `hamlet meta-train` writes; `meta` and `task` override entries of the
// defaults, `score` is best_score as text.
std::string write_candidate(const test::TempDir& dir, const std::string& name, const std::string& score,
                            OptionMap meta = {}, OptionMap task = {}, OptionMap optimizer = {{"seed", "0"}},
                            bool old_format = false) {
  OptionMap m{{"horizon", "100"},  {"meta_lr", "0.01"},          {"seed", "0"},
              {"unroll", "15"},    {"validation_problems", "50"}, {"validation_seed", "0"}};
  for (const auto& [k, v] : meta) {
    if (v == "(drop)") m.erase(k);  // a file written before hamlet had the key
    else m[k] = v;
  }
  OptionMap t{{"dim", "10"}, {"dtype", "float32"}};
  for (const auto& [k, v] : task) t[k] = v;
  const std::string path = (dir / name).string();
  const io::WeightsRecord record =
      interop::to_record(*learned::make_learned("phnn", optimizer),
                         {{"task", "quadratic"},
                          {"task_options", old_format ? format_options(t) : options_to_json(t)},
                          {"meta_train", old_format ? format_options(m) : options_to_json(m)},
                          {"best_score", score}});
  if (old_format) {
    write_version_0(path, record);
  } else {
    io::write_weights(path, record);
  }
  return path;
}

}  // namespace

TEST_CASE("select_weights: the lowest validation score wins, candidates must share the validation problems") {
  test::TempDir dir;
  const std::string a = write_candidate(dir, "a.h5", "0.5", {{"meta_lr", "0.003"}});
  const std::string b = write_candidate(dir, "b.h5", "0.3", {{"meta_lr", "0.01"}});
  const std::string c = write_candidate(dir, "c.h5", "0.4", {{"meta_lr", "0.03"}});

  SECTION("lowest best_score chosen, the varied key and each file's value reported") {
    const meta::WeightSelection s = meta::select_weights({a, b, c});
    CHECK(s.chosen == 1);
    REQUIRE(s.candidates.size() == 3);
    CHECK(s.candidates[0].best_score == 0.5);
    CHECK(s.candidates[2].best_score == 0.4);
    CHECK(s.varied_keys == std::vector<std::string>{"meta_train.meta_lr"});
    CHECK(s.candidates[0].varied.at("meta_train.meta_lr") == "0.003");
    CHECK(s.candidates[1].varied.at("meta_train.meta_lr") == "0.01");
    const auto doc = nlohmann::json::parse(meta::selection_to_json(s));
    CHECK(doc["chosen"] == b);
    CHECK(doc["candidates"][1]["chosen"] == true);
    CHECK(doc["candidates"][0]["chosen"] == false);
    CHECK(doc["candidates"][2]["best_score"] == 0.4);
    CHECK(doc["varied_keys"][0] == "meta_train.meta_lr");
  }
  SECTION("ties go to the first given; a single file is its own choice") {
    const std::string b2 = write_candidate(dir, "b2.h5", "0.3", {{"meta_lr", "0.1"}});
    CHECK(meta::select_weights({b2, a, b}).chosen == 0);
    CHECK(meta::select_weights({a, b, b2}).chosen == 1);
    CHECK(meta::select_weights({c}).chosen == 0);
    CHECK(meta::select_weights({c}).varied_keys.empty());
  }
  SECTION("a diverged run (nan or inf) never wins; all diverged is an error") {
    const std::string n = write_candidate(dir, "n.h5", "nan", {{"meta_lr", "0.3"}});
    const std::string i = write_candidate(dir, "i.h5", "inf", {{"meta_lr", "1"}});
    const meta::WeightSelection s = meta::select_weights({n, c, i});
    CHECK(s.chosen == 1);
    CHECK(std::isnan(s.candidates[0].best_score));
    CHECK(std::isnan(s.candidates[2].best_score));
    CHECK(nlohmann::json::parse(meta::selection_to_json(s))["candidates"][0]["best_score"].is_null());
    CHECK_THROWS_WITH(meta::select_weights({n, i}), Catch::Contains("no candidate has a finite validation score"));
  }
  SECTION("other validation problems or another task: an error naming the key, both files and values") {
    const std::string v = write_candidate(dir, "v.h5", "0.1", {{"validation_seed", "1"}});
    CHECK_THROWS_WITH(meta::select_weights({a, v}),
                      Catch::Contains("meta_train.validation_seed is 0 in the first, 1 in the second") &&
                          Catch::Contains(v));
    const std::string h = write_candidate(dir, "h.h5", "0.1", {{"horizon", "200"}});
    CHECK_THROWS_WITH(meta::select_weights({a, h}), Catch::Contains("meta_train.horizon is 100"));
    const std::string t = write_candidate(dir, "t.h5", "0.1", {}, {{"dim", "20"}});
    CHECK_THROWS_WITH(meta::select_weights({a, t}), Catch::Contains("task.dim is 10 in the first, 20"));
    const std::string arch = write_candidate(dir, "arch.h5", "0.1", {}, {}, {{"seed", "0"}, {"hidden", "8"}});
    CHECK_THROWS_WITH(meta::select_weights({a, arch}), Catch::Contains("architecture is"));
    // Every pair is compared, not only against the first file: here the first does not hold the key.
    const std::string old = write_candidate(dir, "old.h5", "0.1", {{"validation_seed", "(drop)"}});
    CHECK_THROWS_WITH(meta::select_weights({old, b, v}), Catch::Contains(b) && Catch::Contains(v));
  }
  SECTION("where the data were read from, the seeds and optimizer options may differ and are reported") {
    const std::string d =
        write_candidate(dir, "d.h5", "0.2", {{"seed", "3"}}, {{"data_source", "/elsewhere"}}, {{"seed", "3"}, {"out_mul", "0.01"}});
    const meta::WeightSelection s = meta::select_weights({b, d});
    CHECK(s.chosen == 1);
    CHECK(s.varied_keys == std::vector<std::string>{"meta_train.seed", "optimizer.out_mul", "optimizer.seed"});
    CHECK(s.candidates[1].varied.at("optimizer.out_mul") == "0.01");
    const std::string d2 = write_candidate(dir, "d2.h5", "0.2", {}, {{"data_source", "/here"}});
    CHECK(meta::select_weights({d, d2}).varied_keys ==
          std::vector<std::string>{"meta_train.seed", "optimizer.out_mul", "optimizer.seed", "task.data_source"});
  }
  SECTION("a key only some files hold (written before hamlet had the option) is neither compared nor reported") {
    const std::string newer = write_candidate(dir, "newer.h5", "0.2", {{"meta_loss", "log"}}, {{"extra", "1"}});
    const meta::WeightSelection s = meta::select_weights({a, newer});
    CHECK(s.chosen == 1);
    CHECK(s.varied_keys == std::vector<std::string>{"meta_train.meta_lr"});
  }
  SECTION("old \"k=v, k=v\" provenance reads the same as JSON") {
    const std::string old = write_candidate(dir, "old.h5", "0.2", {{"meta_lr", "0.003"}}, {}, {{"seed", "0"}}, true);
    const meta::WeightSelection s = meta::select_weights({old, b});
    CHECK(s.chosen == 0);
    CHECK(s.candidates[0].best_score == 0.2);
    CHECK(s.varied_keys == std::vector<std::string>{"meta_train.meta_lr"});
  }
  SECTION("weights without a meta-training provenance are refused") {
    const std::string bare = (dir / "bare.h5").string();
    interop::save_weights(bare, *learned::make_learned("phnn", {{"seed", "0"}}));
    CHECK_THROWS_WITH(meta::select_weights({a, bare}), Catch::Contains("has no best_score attribute"));
    CHECK_THROWS_WITH(meta::select_weights({}), Catch::Contains("no weight files"));
  }
}
