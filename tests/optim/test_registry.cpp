#include "support/catch.hpp"

#include <string>

#include "hamlet/core/error.hpp"
#include "hamlet/optim/adam.hpp"
#include "hamlet/optim/ecdsep.hpp"
#include "hamlet/optim/registry.hpp"
#include "support/checks.hpp"

using namespace hamlet;
using namespace hamlet::optim;
using Catch::Matchers::Contains;

TEST_CASE("optim registry: names, defaults and option round trips") {
  const std::vector<std::string> expected = {"sgd",     "momentum",         "nag",        "adam",
                                             "rmsprop", "symplectic-euler", "symplectic", "ecdsep"};
  REQUIRE(hand_designed_names() == expected);
  for (const auto& name : hand_designed_names()) {
    DYNAMIC_SECTION(name) {
      const auto opt = make_optimizer(name, {});
      CHECK(opt->name() == name);
      const OptionMap resolved = opt->options();
      REQUIRE(resolved.count("lr") == 1);
      CHECK(std::stod(resolved.at("lr")) == opt->learning_rate());
      // options() feeds back into make_optimizer unchanged, also after overriding the step size.
      CHECK(make_optimizer(name, resolved)->options() == resolved);
      const auto tuned = make_optimizer(name, {{"lr", "0.0123"}});
      CHECK(tuned->learning_rate() == 0.0123);
      CHECK(make_optimizer(name, tuned->options())->options() == tuned->options());
      CHECK(opt->needs_loss() == (name == "ecdsep"));
    }
  }
}

TEST_CASE("optim registry: documented defaults") {
  CHECK(make_optimizer("sgd", {})->learning_rate() == 0.01);
  CHECK(make_optimizer("momentum", {})->options().at("momentum") == "0.9");
  CHECK(make_optimizer("nag", {})->options().at("momentum") == "0.9");
  const OptionMap adam = make_optimizer("adam", {})->options();
  CHECK(adam == OptionMap{{"lr", "0.001"}, {"beta1", "0.9"}, {"beta2", "0.999"}, {"eps", "1e-08"}});
  CHECK(make_optimizer("rmsprop", {})->options() == OptionMap{{"lr", "0.01"}, {"alpha", "0.99"}, {"eps", "1e-08"}});
  CHECK(make_optimizer("symplectic-euler", {})->options().at("friction") == "1");
  CHECK(make_optimizer("symplectic", {})->options() ==
        OptionMap{{"lr", "0.01"}, {"beta", "0.9"}, {"epsilon", "1e-08"}});
  const OptionMap ecd = make_optimizer("ecdsep", {})->options();
  test::check_entries(ecd, {{"eta", "1"}, {"F0", "0"}, {"eps1", "1e-10"}, {"eps2", "1e-40"}, {"deltaEn", "0"},
                            {"nu", "1e-05"}, {"s", "1"}, {"weight_decay", "0"}, {"consEn", "true"}, {"seed", "0"}});
  const auto e = make_optimizer("ecdsep", {{"consEn", "false"}, {"seed", "17"}, {"deltaEn", "1"}});
  const auto& typed = dynamic_cast<const Ecdsep&>(*e).config();
  CHECK_FALSE(typed.consEn);
  CHECK(typed.seed == 17);
  CHECK(typed.deltaEn == 1.0);
}

TEST_CASE("optim registry: errors name what was wrong") {
  SECTION("unknown name lists the valid names") {
    CHECK_THROWS_WITH(make_optimizer("adamw", {}),
                      Contains("adamw") && Contains("sgd, momentum, nag, adam, rmsprop, symplectic-euler, "
                                                    "symplectic, ecdsep"));
  }
  SECTION("unknown option key lists the valid keys") {
    CHECK_THROWS_WITH(make_optimizer("adam", {{"beta3", "0.5"}}),
                      Contains("beta3") && Contains("lr, beta1, beta2, eps"));
    CHECK_THROWS_WITH(make_optimizer("ecdsep", {{"delta_en", "1"}}), Contains("delta_en") && Contains("deltaEn"));
  }
  SECTION("invalid values name the field and the value") {
    CHECK_THROWS_WITH(make_optimizer("adam", {{"beta2", "1.5"}}), "adam.beta2 must be in [0, 1), got 1.5");
    CHECK_THROWS_WITH(make_optimizer("sgd", {{"lr", "-1"}}), Contains("sgd.lr") && Contains("-1"));
    CHECK_THROWS_WITH(make_optimizer("momentum", {{"momentum", "1.2"}}),
                      Contains("momentum.momentum") && Contains("1.2"));
    CHECK_THROWS_WITH(make_optimizer("rmsprop", {{"alpha", "1"}}), Contains("rmsprop.alpha") && Contains("got 1"));
    CHECK_THROWS_WITH(make_optimizer("symplectic-euler", {{"friction", "0"}}),
                      Contains("symplectic-euler.friction") && Contains("got 0"));
    CHECK_THROWS_WITH(make_optimizer("symplectic", {{"beta", "-0.1"}}),
                      Contains("symplectic.beta") && Contains("-0.1"));
    CHECK_THROWS_WITH(make_optimizer("ecdsep", {{"eta", "0.5"}}), Contains("ecdsep.eta") && Contains("0.5"));
    CHECK_THROWS_WITH(make_optimizer("ecdsep", {{"nu", "-1e-5"}}), Contains("ecdsep.nu") && Contains("-1e-05"));
    CHECK_THROWS_WITH(make_optimizer("ecdsep", {{"consEn", "maybe"}}), Contains("consEn") && Contains("maybe"));
    CHECK_THROWS_WITH(make_optimizer("adam", {{"lr", "fast"}}), Contains("lr") && Contains("fast"));
    CHECK_THROWS_AS(Adam(AdamOptions{0.1, 1.0}), Error);
  }
}
