#include <torch/csrc/autograd/autograd.h>

#include "hamlet/core/options_json.hpp"
#include "hamlet/core/seed.hpp"
#include "hamlet/io/h5.hpp"
#include "hamlet/learned/registry.hpp"
#include "support/catch.hpp"
#include "support/test_support.hpp"

using namespace hamlet;
using namespace hamlet::learned;

namespace {

const auto kF64 = at::TensorOptions().dtype(at::kDouble);

bool same_weights(const TensorList& a, const TensorList& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (a[i].scalar_type() != b[i].scalar_type() || !at::equal(a[i], b[i])) return false;
  }
  return true;
}

// Perturbs every weight so that a loaded file is distinguishable from a fresh initialisation.
void perturb(LearnedOptimizer& opt, uint64_t seed) {
  at::Generator gen = make_generator(seed);
  TensorList w;
  for (const auto& t : opt.weights()) w.push_back(t + 0.1 * at::randn(t.sizes(), gen, t.options()));
  opt.set_weights(w);
}

struct Problem {
  TensorList params, grads;
};

Problem problem(int64_t b, at::ScalarType dtype = at::kDouble) {
  at::Generator gen = make_generator(17);
  const auto o = at::TensorOptions().dtype(dtype);
  return {{at::randn({b, 4}, gen, o), at::randn({b, 2, 3}, gen, o)},
          {at::randn({b, 4}, gen, o), at::randn({b, 2, 3}, gen, o) * 1e-3}};
}

}  // namespace

TEST_CASE("learned registry: names, construction and option errors") {
  CHECK(learned_names() == std::vector<std::string>{"phnn-paper", "phnn", "lstm", "mlp-lopt", "phnn-features"});
  CHECK(is_learned("phnn"));
  CHECK_FALSE(is_learned("adam"));
  CHECK_THROWS_WITH(make_learned("lstm2", {}),
                    Catch::Contains("unknown learned optimizer 'lstm2'") && Catch::Contains("valid learned optimizers: phnn-paper, phnn, lstm, mlp-lopt, phnn-features"));
  CHECK_THROWS_WITH(make_learned("phnn-paper", {{"hidden", "3"}}),
                    Catch::Contains("hidden") && Catch::Contains("mass_factor"));
  CHECK_THROWS_WITH(make_learned("lstm", {{"hiden", "3"}}), Catch::Contains("hiden"));
  CHECK_THROWS_WITH(make_learned("phnn", {{"h", "fast"}}), Catch::Contains("'h'"));
  CHECK_THROWS_WITH(make_learned("phnn-paper", {{"mass_factor", "LL"}}), Catch::Contains("mass_factor"));
  CHECK_THROWS_WITH(make_learned("lstm", {{"dtype", "float16"}}), Catch::Contains("lstm.dtype"));

  const auto lstm = make_learned("lstm", {{"out_mul", "0.1"}, {"preprocess", "true"}});
  CHECK(lstm->name() == "lstm");
  CHECK(lstm->learning_rate() == 0.1);
  CHECK(lstm->options().at("preprocess") == "true");
  CHECK(lstm->num_params() == 5301);
  CHECK(make_learned("phnn-paper", {})->num_params() == 19);
  CHECK(make_learned("phnn", {{"preprocess", "1"}})->num_params() == 468);
  // Same seed, same weights; another seed, other weights.
  CHECK(
      same_weights(make_learned("phnn", {{"seed", "4"}})->weights(), make_learned("phnn", {{"seed", "4"}})->weights()));
  CHECK_FALSE(same_weights(make_learned("phnn", {{"seed", "4"}})->weights(), make_learned("phnn", {})->weights()));
}

TEST_CASE("every learned optimizer: batched rows, dtypes and trainability") {
  for (const std::string name : {"phnn-paper", "phnn", "lstm", "mlp-lopt", "phnn-features"}) {
    // mlp-lopt and phnn-features have no gradient preprocessing: one variant.
    const std::vector<std::string> variants = name == "mlp-lopt" || name == "phnn-features"
                                                  ? std::vector<std::string>{""}
                                                  : std::vector<std::string>{"false", "true"};
    for (const std::string& preprocess : variants) {
      INFO(name << " preprocess=" << preprocess);
      const auto with_preprocess = [&preprocess](OptionMap o) {
        if (!preprocess.empty()) o["preprocess"] = preprocess;
        return o;
      };
      const auto opt = make_learned(name, with_preprocess({{"dtype", "float64"}, {"seed", "3"}}));
      // Three problems in one tensor program equal three separate runs (two steps, state carried).
      const Problem all = problem(3);
      const auto a1 = opt->update(all.params, all.grads, at::Tensor(), opt->init(all.params));
      const auto a2 = opt->update(a1.params, all.grads, at::Tensor(), a1.state);
      for (int64_t b = 0; b < 3; ++b) {
        const auto slice = [b](const TensorList& xs) {
          TensorList out;
          for (const auto& x : xs) out.push_back(x.narrow(0, b, 1));
          return out;
        };
        const TensorList p = slice(all.params), g = slice(all.grads);
        const auto s1 = opt->update(p, g, at::Tensor(), opt->init(p));
        const auto s2 = opt->update(s1.params, g, at::Tensor(), s1.state);
        for (std::size_t i = 0; i < p.size(); ++i) {
          CHECK(test::max_abs_diff(s2.params[i], a2.params[i].narrow(0, b, 1)) < 1e-13);
        }
        for (const auto& [slot, list] : s2.state.slots) {
          for (std::size_t i = 0; i < list.size(); ++i) {
            CHECK(test::max_abs_diff(list[i], a2.state.slots.at(slot)[i].narrow(0, b, 1)) < 1e-13);
          }
        }
      }
      // Float32 weights: float32 problems stay float32; float64 problems compute and stay in float64.
      const auto f32 = make_learned(name, with_preprocess({{"seed", "3"}}));
      const Problem single = problem(2, at::kFloat);
      const auto r32 = f32->update(single.params, single.grads, at::Tensor(), f32->init(single.params));
      CHECK(r32.params[1].scalar_type() == at::kFloat);
      CHECK(r32.params[1].isfinite().all().item<bool>());
      const Problem dbl = problem(2);
      const auto r64 = f32->update(dbl.params, dbl.grads, at::Tensor(), f32->init(dbl.params));
      CHECK(r64.params[0].scalar_type() == at::kDouble);
      CHECK(r64.state.slots.begin()->second[0].scalar_type() == at::kDouble);
      // set_trainable makes leaves that require grad and back, values unchanged.
      const TensorList before = opt->weights();
      opt->set_trainable(true);
      for (const auto& w : opt->weights()) CHECK((w.requires_grad() && w.is_leaf()));
      CHECK(opt->update(dbl.params, dbl.grads, at::Tensor(), opt->init(dbl.params)).params[0].requires_grad());
      opt->set_trainable(false);
      for (const auto& w : opt->weights()) CHECK_FALSE(w.requires_grad());
      CHECK(same_weights(before, opt->weights()));
    }
  }
}

TEST_CASE("weight files: save and load round trip") {
  test::TempDir dir;
  for (const std::string name : {"phnn-paper", "phnn", "lstm"}) {
    for (const std::string dtype : {"float32", "float64"}) {
      INFO(name << " " << dtype);
      const auto opt =
          make_learned(name, {{"preprocess", "true"}, {"out_mul", "0.01"}, {"dtype", dtype}, {"seed", "2"}});
      perturb(*opt, 5);
      const std::string path = (dir / (name + "-" + dtype + ".h5")).string();
      save_weights(path, *opt, {{"task", "mlp"}, {"hamlet_version", "test"}});
      {
        const io::H5Reader reader(path);
        CHECK(reader.attribute_string("/", "optimizer") == name);
        CHECK(reader.attribute_string("/", "architecture") == opt->architecture());
        CHECK(reader.attribute_int("/", "num_params") == opt->num_params());
        CHECK(reader.attribute_string("/", "task") == "mlp");
        CHECK(parse_options_text(reader.attribute_string("/", "options")).at("out_mul") == "0.01");
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
