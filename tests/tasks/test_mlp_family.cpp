// The sampled MLP family (tasks/mlp_family.hpp): every problem is the mlp problem of its drawn configuration,
// the draws cover the declared ranges and nothing else, mixed batches are refused, and meta-training and the
// evaluator run on it (tests/meta/test_mixture_training.cpp).
#include "support/catch.hpp"

#include <filesystem>
#include <set>

#include "hamlet/data/dataset.hpp"
#include "hamlet/tasks/mlp_family.hpp"
#include "hamlet/tasks/registry.hpp"
#include "support/test_support.hpp"

using namespace hamlet;
using namespace hamlet::tasks;

namespace {

bool same(const TensorList& a, const TensorList& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (!at::equal(a[i], b[i])) return false;
  }
  return true;
}

bool have_digits() {
  if (std::filesystem::exists(std::filesystem::path(data::data_root()) / "digits" / "digits.csv.gz")) return true;
  WARN("no digits under " << data::data_root() << ": run scripts/fetch_data.sh");
  return false;
}

MlpFamilyOptions small_family() {
  return MlpFamilyOptions::from_map({{"datasets", "digits"}, {"activations", "relu:tanh"}, {"widths", "8:16"},
                                     {"depths", "1:2"}, {"batch_size", "16"}, {"dtype", "float64"}});
}

}  // namespace

TEST_CASE("mlp-family: problem i is problem i of the mlp task of its drawn configuration") {
  if (!have_digits()) return;
  const MlpFamilyTask family(small_family());
  CHECK(family.configuration_count() == 8);  // 1 dataset x 2 activations x 2 widths x 2 depths
  for (int64_t i = 0; i < 6; ++i) {
    INFO("problem " << i << ": " << family.configuration(Split::kTest, 3, i));
    const auto mine = family.sample(Split::kTest, 3, i, 1, c10::kCPU);
    // The same configuration built from scratch through the mlp task's own options.
    const std::string config = family.configuration(Split::kTest, 3, i);
    const MlpTask& drawn = family.configuration_task(Split::kTest, 3, i);
    const auto reference = drawn.sample(Split::kTest, 3, i, 1, c10::kCPU);
    CHECK(same(mine->initial_params(), reference->initial_params()));
    CHECK(at::equal(mine->loss(mine->initial_params(), 2), reference->loss(reference->initial_params(), 2)));
    const OptionMap o = drawn.options();
    CHECK(config == "digits-" + o.at("activation") + "-" + o.at("hidden").substr(0, o.at("hidden").find(':')) + "x" +
                        std::to_string(mine->initial_params().size() / 2 - 1));
    // A fresh mlp task with those options draws the same problem: the family adds nothing to it.
    OptionMap plain = {{"dataset", "digits"}, {"activation", o.at("activation")}, {"hidden", o.at("hidden")},
                       {"batch_size", "16"}, {"dtype", "float64"}};
    const auto fresh = make_task("mlp", plain)->sample(Split::kTest, 3, i, 1, c10::kCPU);
    CHECK(same(mine->initial_params(), fresh->initial_params()));
  }
}

TEST_CASE("mlp-family: the draws cover every declared value and nothing else") {
  if (!have_digits()) return;
  const MlpFamilyTask family(small_family());
  std::set<std::string> seen;
  for (int64_t i = 0; i < 200; ++i) seen.insert(family.configuration(Split::kTrain, 0, i));
  const std::set<std::string> all{"digits-relu-8x1",  "digits-relu-8x2",  "digits-relu-16x1", "digits-relu-16x2",
                                  "digits-tanh-8x1",  "digits-tanh-8x2",  "digits-tanh-16x1", "digits-tanh-16x2"};
  CHECK(seen == all);
  // Pure in (split, seed, i): asking again or in another order gives the same configuration.
  CHECK(family.configuration(Split::kTrain, 0, 17) == family.configuration(Split::kTrain, 0, 17));
  CHECK(MlpFamilyTask(small_family()).configuration(Split::kTrain, 0, 17) == family.configuration(Split::kTrain, 0, 17));
}

TEST_CASE("mlp-family: a batch of mixed architectures is refused, one of a single configuration is allowed") {
  if (!have_digits()) return;
  const MlpFamilyTask family(small_family());
  CHECK(family.default_batch() == 1);
  int64_t mixed = 1;
  while (family.configuration(Split::kTest, 0, mixed) == family.configuration(Split::kTest, 0, 0)) ++mixed;
  CHECK_THROWS_WITH(family.sample(Split::kTest, 0, 0, mixed + 1, c10::kCPU),
                    Catch::Contains("different architectures") && Catch::Contains("--batch=1"));
  CHECK(family.sample(Split::kTest, 0, 0, mixed, c10::kCPU)->size() == mixed);
}

TEST_CASE("mlp-family: bad ranges are refused naming the option") {
  CHECK_THROWS_WITH(MlpFamilyOptions::from_map({{"activations", "relu:swish"}}),
                    Catch::Contains("mlp-family.activations") && Catch::Contains("swish"));
  CHECK_THROWS_WITH(MlpFamilyOptions::from_map({{"datasets", "digits:digits"}}), Catch::Contains("twice"));
  CHECK_THROWS_WITH(MlpFamilyOptions::from_map({{"widths", "8:0"}}), Catch::Contains("mlp-family.widths"));
  CHECK_THROWS_WITH(MlpFamilyOptions::from_map({{"datasets", ""}}), Catch::Contains("at least one"));
}

TEST_CASE("mlp-family: episodes draw one configuration each, validation scores distinct ones") {
  if (!have_digits()) return;
  const MlpFamilyTask family(small_family());
  std::set<const Task*> episodes;
  for (int64_t e = 0; e < 40; ++e) {
    const Task& t = family.episode_task(7, e);
    CHECK(&t == &family.episode_task(7, e));
    episodes.insert(&t);
  }
  CHECK(episodes.size() > 1);
  const auto components = family.components();
  REQUIRE(components.size() == 4);
  std::set<std::string> names;
  for (const auto& c : components) {
    names.insert(c.name);
    CHECK(c.weight == Approx(0.25));
  }
  CHECK(names.size() == 4);
}
