#include "support/catch.hpp"

#include "hamlet/core/error.hpp"
#include "hamlet/core/options.hpp"
#include "hamlet/core/seed.hpp"
#include "hamlet/core/tensor.hpp"

using namespace hamlet;

TEST_CASE("option lists parse, typed readers validate and name the offending key") {
  OptionMap m = parse_option_list(" lr = 0.1, beta1=0.9 ,name=x,flag=on,hidden=20:40");
  REQUIRE(m.size() == 5);
  double lr = 0, beta1 = 0;
  bool flag = false;
  std::string name;
  std::vector<int64_t> hidden;
  take_option(m, "adam", "lr", lr);
  take_option(m, "adam", "beta1", beta1);
  take_option(m, "adam", "name", name);
  take_option(m, "adam", "flag", flag);
  take_option(m, "adam", "hidden", hidden);
  CHECK(lr == 0.1);
  CHECK(beta1 == 0.9);
  CHECK(name == "x");
  CHECK(flag);
  CHECK((hidden == std::vector<int64_t>{20, 40}));
  CHECK(m.empty());

  SECTION("bad values") {
    OptionMap bad{{"lr", "0.1x"}, {"steps", "3.5"}, {"flag", "maybe"}};
    double d = 0;
    int64_t i = 0;
    bool b = false;
    CHECK_THROWS_WITH(take_option(bad, "adam", "lr", d), Catch::Contains("adam") && Catch::Contains("'lr'") &&
                                                               Catch::Contains("0.1x"));
    CHECK_THROWS_WITH(take_option(bad, "run", "steps", i), Catch::Contains("integer") && Catch::Contains("3.5"));
    CHECK_THROWS_WITH(take_option(bad, "run", "flag", b), Catch::Contains("true or false"));
    CHECK_THROWS_AS(parse_option_list("lr"), Error);
  }
  SECTION("unknown keys are listed with the valid ones") {
    OptionMap left{{"lrr", "1"}};
    CHECK_THROWS_WITH(reject_unknown_options(left, "adam", {"lr", "beta1"}),
                      Catch::Contains("lrr") && Catch::Contains("valid options: lr, beta1"));
  }
  SECTION("range checks name the field and value") {
    CHECK_THROWS_WITH(check_positive("adam.lr", -1.0), Catch::Contains("adam.lr") && Catch::Contains("-1"));
    CHECK_THROWS_WITH(check_in_range("adam.beta1", 1.0, 0.0, 1.0), Catch::Contains("[0, 1)"));
    CHECK_NOTHROW(check_in_range("x", 1.0, 0.0, 1.0, true));
    CHECK(format_number(0.1) == "0.1");
    CHECK(format_number(3e-5) == "3e-05");
  }
}

TEST_CASE("seeds are deterministic and well separated, per-problem reductions") {
  CHECK(mix_seed(1, 2) == mix_seed(1, 2));
  CHECK(mix_seed(1, 2) != mix_seed(2, 1));
  CHECK(mix_seeds({0, 1, 2}) != mix_seeds({0, 1, 3}));
  auto g1 = make_generator(7), g2 = make_generator(7);
  CHECK(at::equal(at::randn({5}, g1, at::kDouble), at::randn({5}, g2, at::kDouble)));

  const at::Tensor a = at::arange(6, at::kDouble).reshape({2, 3});        // rows (0,1,2), (3,4,5)
  const at::Tensor b = at::ones({2, 2, 2}, at::kDouble);
  CHECK(at::allclose(per_problem_sum_sq(a), at::tensor({5.0, 50.0}, at::kDouble)));
  CHECK(at::allclose(per_problem_norm({a, b}), at::tensor({3.0, std::sqrt(54.0)}, at::kDouble)));
  CHECK(per_problem_numel({a, b}) == 7);
  CHECK(expand_per_problem(at::ones({2}), 3).sizes().vec() == std::vector<int64_t>({2, 1, 1}));
}
