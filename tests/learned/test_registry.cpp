#include <torch/csrc/autograd/autograd.h>

#include <algorithm>

#include "hamlet/core/seed.hpp"
#include "hamlet/learned/registry.hpp"
#include "learned_fixtures.hpp"
#include "support/catch.hpp"
#include "support/test_support.hpp"

using namespace hamlet;
using namespace hamlet::learned;

namespace {

const auto kF64 = at::TensorOptions().dtype(at::kDouble);

using test::perturb;
using test::Problem;
using test::problem;
using test::same_weights;

}  // namespace

TEST_CASE("learned registry: names, construction and option errors") {
  // The table's order, whatever was added after these.
  const std::vector<std::string> names = learned_names();
  const std::vector<std::string> first = {"phnn-paper", "phnn", "lstm", "mlp-lopt", "phnn-features"};
  REQUIRE(names.size() >= first.size());
  CHECK(std::vector<std::string>(names.begin(), names.begin() + 5) == first);
  std::string listed;
  for (const auto& n : names) {
    CHECK(is_learned(n));
    listed += (listed.empty() ? "" : ", ") + n;
  }
  CHECK_FALSE(is_learned("adam"));
  CHECK_THROWS_WITH(make_learned("lstm2", {}),
                    Catch::Contains("unknown learned optimizer 'lstm2'") && Catch::Contains("valid learned optimizers: " + listed));
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

TEST_CASE("learned registry: activations per coordinate, counted by hand") {
  // The benchmark's compute floor prices these at the tanh rate (hamlet benchmark --mode=step).
  CHECK(make_learned("lstm", {{"preprocess", "false"}})->activations_per_coordinate() == 200);  // 2 cells x 20 x (3 σ + 2 tanh)
  CHECK(make_learned("lstm", {{"preprocess", "true"}, {"hidden", "8"}})->activations_per_coordinate() == 81);
  // phnn, d = 1, w = 16, K = 1: V, G, D and V again at q̂; the state mass adds M twice, its softplus twice and two σ.
  CHECK(make_learned("phnn", {{"mass", "constant"}})->activations_per_coordinate() == 64);
  CHECK(make_learned("phnn", {})->activations_per_coordinate() == 100);
  CHECK(make_learned("phnn", {{"mass", "constant"}, {"substeps", "2"}})->activations_per_coordinate() == 112);
  CHECK(make_learned("phnn-features", {})->activations_per_coordinate() == 65);  // + the exp readout
  CHECK(make_learned("mlp-lopt", {})->activations_per_coordinate() == 1);
  CHECK(make_learned("phnn-lift", {{"hidden", "12"}})->activations_per_coordinate() == 12);
  CHECK(make_learned("phnn-paper", {})->activations_per_coordinate() == 0);
  CHECK(make_learned("phnn-paper", {{"preprocess", "true"}})->activations_per_coordinate() == 2);
  for (const auto& name : learned_names()) {
    const auto opt = make_learned(name, {});
    CHECK(opt->activations_per_coordinate() <= opt->flops_per_coordinate());
  }
}

TEST_CASE("every learned optimizer: batched rows, dtypes and trainability") {
  for (const std::string& name : learned_names()) {
    // Optimizers that read their own features refuse preprocess=true: one variant.
    const std::vector<std::string> variants =
        test::accepts_preprocess(name) ? std::vector<std::string>{"false", "true"} : std::vector<std::string>{""};
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

TEST_CASE("trained weights: round trip in memory, recorded options as defaults, architecture kept") {
  for (const std::string name : {"phnn-paper", "phnn", "lstm"}) {
    for (const std::string dtype : {"float32", "float64"}) {
      INFO(name << " " << dtype);
      const auto opt = make_learned(name, test::round_trip_options(dtype));
      perturb(*opt, 5);
      TrainedWeights trained = trained_weights(*opt);
      trained.source = "trained.h5";
      CHECK(trained.optimizer == name);
      CHECK(trained.architecture == opt->architecture());
      CHECK(trained.options.at("out_mul") == "0.01");
      CHECK_FALSE(trained.options.count("weights"));
      for (const auto& v : trained.values) CHECK(v.scalar_type() == at::kDouble);
      // Into a fresh optimizer of the same architecture (another seed): bitwise equal weights, any name order.
      const auto fresh = make_learned(name, {{"preprocess", "true"}, {"dtype", dtype}, {"seed", "9"}});
      CHECK_FALSE(same_weights(fresh->weights(), opt->weights()));
      TrainedWeights reversed = trained;
      std::reverse(reversed.names.begin(), reversed.names.end());
      std::reverse(reversed.values.begin(), reversed.values.end());
      set_trained_weights(*fresh, reversed);
      CHECK(same_weights(fresh->weights(), opt->weights()));
      // Built from them: the recorded options are the defaults, the source is the "weights" option.
      const auto loaded = make_learned(name, {}, trained);
      CHECK(same_weights(loaded->weights(), opt->weights()));
      CHECK(loaded->learning_rate() == 0.01);
      CHECK(loaded->options().at("weights") == "trained.h5");
      const auto tuned = make_learned(name, {{"out_mul", "0.5"}, {"preprocess", "1"}}, trained);
      CHECK(tuned->learning_rate() == 0.5);
      CHECK_THROWS_WITH(make_learned(name, {{"preprocess", "false"}}, trained),
                        Catch::Contains("preprocess") && Catch::Contains("trained.h5"));
    }
  }
}

TEST_CASE("trained weights: mismatches name the source, a weights file is not read here") {
  TrainedWeights paper = trained_weights(*make_learned("phnn-paper", {}));
  paper.source = "paper.h5";
  const auto lstm = make_learned("lstm", {});
  CHECK_THROWS_WITH(set_trained_weights(*lstm, paper), Catch::Contains("paper.h5") && Catch::Contains("phnn-paper"));
  CHECK_THROWS_WITH(make_learned("lstm", {}, paper), Catch::Contains("paper.h5") && Catch::Contains("phnn-paper"));
  const auto d2 = make_learned("phnn-paper", {{"preprocess", "true"}});
  CHECK_THROWS_WITH(set_trained_weights(*d2, paper), Catch::Contains("paper.h5") && Catch::Contains("d=1"));
  TrainedWeights renamed = paper;
  renamed.names.back() += "x";
  CHECK_THROWS_WITH(set_trained_weights(*make_learned("phnn-paper", {}), renamed), Catch::Contains("do not match"));
  TrainedWeights reshaped = paper;
  reshaped.values.back() = at::zeros({7}, at::kDouble);
  CHECK_THROWS_WITH(set_trained_weights(*make_learned("phnn-paper", {}), reshaped), Catch::Contains("shape"));
  CHECK_THROWS_WITH(make_learned("lstm", {{"weights", "w.h5"}}), Catch::Contains("w.h5") && Catch::Contains("interop"));
  CHECK_NOTHROW(make_learned("lstm", {{"weights", ""}}));
}
