// Learned optimizers from and to weights files (interop/learned_files.hpp): the option weights=PATH, save and load,
// files of the older layout, errors naming the file.
#include <filesystem>

#include "hamlet/core/options_json.hpp"
#include "hamlet/core/seed.hpp"
#include "hamlet/interop/learned_files.hpp"
#include "hamlet/learned/registry.hpp"
#include "hamlet/io/h5.hpp"
#include "hamlet/io/weights_file.hpp"
#include "learned/learned_fixtures.hpp"
#include "support/catch.hpp"
#include "support/test_support.hpp"

using namespace hamlet;
using interop::load_weights;
using interop::make_learned;
using interop::save_weights;

using test::perturb;
using test::Problem;
using test::problem;
using test::same_weights;

TEST_CASE("weight files: save and load round trip") {
  test::TempDir dir;
  for (const std::string name : {"phnn-paper", "phnn", "lstm"}) {
    for (const std::string dtype : {"float32", "float64"}) {
      INFO(name << " " << dtype);
      const auto opt = make_learned(name, test::round_trip_options(dtype));
      perturb(*opt, 5);
      const std::string path = (dir / (name + "-" + dtype + ".h5")).string();
      save_weights(path, *opt, {{"task", "mlp"}, {"hamlet_version", "test"}});
      {
        const io::H5Reader reader(path);
        CHECK(reader.attribute_string("/", "optimizer") == name);
        CHECK(reader.attribute_string("/", "architecture") == opt->architecture());
        CHECK(reader.attribute_int("/", "num_params") == opt->num_params());
        CHECK(reader.attribute_string("/", "task") == "mlp");
        CHECK(options_from_json(reader.attribute_string("/", "options")).at("out_mul") == "0.01");
      }
      // Loading into a fresh optimizer of the same architecture (another seed): bitwise equal weights.
      const auto fresh = make_learned(name, {{"preprocess", "true"}, {"dtype", dtype}, {"seed", "9"}});
      CHECK_FALSE(same_weights(fresh->weights(), opt->weights()));
      load_weights(path, *fresh);
      CHECK(same_weights(fresh->weights(), opt->weights()));

      // make_learned with "weights": the file's options are the defaults (preprocess, out_mul, dtype).
      const auto loaded = make_learned(name, {{"weights", path}});
      CHECK(same_weights(loaded->weights(), opt->weights()));
      CHECK(loaded->learning_rate() == 0.01);
      CHECK(loaded->options().at("weights") == path);
      CHECK(loaded->architecture() == opt->architecture());
      const Problem pr = problem(2);
      const auto ra = opt->update(pr.params, pr.grads, at::Tensor(), opt->init(pr.params));
      const auto rb = loaded->update(pr.params, pr.grads, at::Tensor(), loaded->init(pr.params));
      for (std::size_t i = 0; i < ra.params.size(); ++i) CHECK(at::equal(ra.params[i], rb.params[i]));

      // Behavioural options may be overridden; repeating an architecture option with its own value is fine.
      const auto tuned = make_learned(name, {{"weights", path}, {"out_mul", "0.5"}, {"preprocess", "1"}});
      CHECK(tuned->learning_rate() == 0.5);
      CHECK(same_weights(tuned->weights(), opt->weights()));
      CHECK_THROWS_WITH(make_learned(name, {{"weights", path}, {"preprocess", "false"}}),
                        Catch::Contains("preprocess") && Catch::Contains(path));
      // Saving a loaded optimizer records its own options, not the old file name.
      const std::string copy = (dir / (name + "-" + dtype + "-copy.h5")).string();
      save_weights(copy, *loaded);
      CHECK(io::H5Reader(copy).attribute_string("/", "options").find("weights") == std::string::npos);
    }
  }
  CHECK_THROWS_WITH(make_learned("phnn", {{"weights", (dir / "phnn-float32.h5").string()}, {"hidden", "8"}}),
                    Catch::Contains("hidden"));
  CHECK_THROWS_WITH(make_learned("phnn", {{"weights", (dir / "phnn-float32.h5").string()}, {"mass", "constant"}}),
                    Catch::Contains("mass"));
  CHECK_THROWS_WITH(make_learned("phnn", {{"weights", (dir / "phnn-float32.h5").string()}, {"color", "red"}}),
                    Catch::Contains("color"));
}

TEST_CASE("weight files: every registered learned optimizer round-trips with its default options") {
  test::TempDir dir;
  for (const std::string& name : learned::learned_names()) {
    INFO(name);
    const auto opt = make_learned(name, {{"seed", "2"}, {"out_mul", "0.01"}, {"dtype", "float64"}});
    perturb(*opt, 6);
    const std::string path = (dir / (name + ".h5")).string();
    save_weights(path, *opt);
    const auto loaded = make_learned(name, {{"weights", path}});
    CHECK(same_weights(loaded->weights(), opt->weights()));
    CHECK(loaded->architecture() == opt->architecture());
    CHECK(loaded->learning_rate() == 0.01);
    const Problem pr = problem(2);
    const auto ra = opt->update(pr.params, pr.grads, at::Tensor(), opt->init(pr.params));
    const auto rb = loaded->update(pr.params, pr.grads, at::Tensor(), loaded->init(pr.params));
    for (std::size_t i = 0; i < ra.params.size(); ++i) CHECK(at::equal(ra.params[i], rb.params[i]));
  }
}

TEST_CASE("weight files written before JSON attributes (options as k=v) load to the same optimizer") {
  test::TempDir dir;
  const auto opt = make_learned("phnn", {{"seed", "4"}, {"out_mul", "0.02"}, {"mass", "constant"}});
  const std::string old_format = (dir / "old.h5").string();
  {
    io::H5Writer w(old_format);
    for (std::size_t i = 0; i < opt->weights().size(); ++i) w.write("/weights/" + opt->weight_names()[i], opt->weights()[i]);
    w.set_attribute("/", "optimizer", "phnn");
    w.set_attribute("/", "architecture", opt->architecture());
    OptionMap recorded = opt->options();
    w.set_attribute("/", "options", format_options(recorded));
    w.set_attribute("/", "num_params", opt->num_params());
    w.commit();
  }
  const std::string json_format = (dir / "new.h5").string();
  save_weights(json_format, *opt);
  CHECK(io::H5Reader(json_format).attribute_string("/", "options").front() == '{');
  const auto a = make_learned("phnn", {{"weights", old_format}});
  const auto b = make_learned("phnn", {{"weights", json_format}});
  OptionMap oa = a->options(), ob = b->options();
  CHECK(oa.at("weights") == old_format);
  oa.erase("weights"), ob.erase("weights");
  CHECK(oa == ob);
  CHECK(a->learning_rate() == 0.02);
  CHECK(same_weights(a->weights(), b->weights()));
}

TEST_CASE("weight files: mismatches and missing files are clear errors naming the file") {
  test::TempDir dir;
  const std::string paper = (dir / "paper.h5").string();
  save_weights(paper, *make_learned("phnn-paper", {}));

  const auto lstm = make_learned("lstm", {});
  CHECK_THROWS_WITH(load_weights(paper, *lstm), Catch::Contains(paper) && Catch::Contains("phnn-paper"));
  CHECK_THROWS_WITH(make_learned("lstm", {{"weights", paper}}),
                    Catch::Contains(paper) && Catch::Contains("phnn-paper"));
  // d = 1 weights into a d = 2 optimizer.
  const auto d2 = make_learned("phnn-paper", {{"preprocess", "true"}});
  CHECK_THROWS_WITH(load_weights(paper, *d2), Catch::Contains(paper) && Catch::Contains("d=1"));
  const auto no_bias = make_learned("phnn-paper", {{"keep_unused_L_bias", "false"}});
  CHECK_THROWS_WITH(load_weights(paper, *no_bias), Catch::Contains(paper));
  // Missing file.
  const std::string missing = (dir / "missing.h5").string();
  CHECK_THROWS_WITH(load_weights(missing, *lstm), Catch::Contains(missing));
  CHECK_THROWS_WITH(make_learned("lstm", {{"weights", missing}}), Catch::Contains(missing));
  // Reserved attribute names cannot be overwritten by provenance; nothing is left behind.
  const std::string bad = (dir / "bad.h5").string();
  CHECK_THROWS_WITH(save_weights(bad, *lstm, {{"architecture", "x"}}), Catch::Contains("reserved"));
  CHECK_FALSE(std::filesystem::exists(bad));
}
