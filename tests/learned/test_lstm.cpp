#include "hamlet/core/seed.hpp"
#include "hamlet/learned/lstm.hpp"
#include "support/catch.hpp"
#include "support/test_support.hpp"

using namespace hamlet;
using namespace hamlet::learned;

namespace {

const auto kF64 = at::TensorOptions().dtype(at::kDouble);

LstmOptimizer make(bool preprocess, int64_t seed = 0) {
  LstmOptions o;
  o.preprocess = preprocess;
  o.seed = seed;
  o.dtype = "float64";
  return LstmOptimizer(o);
}

}  // namespace

TEST_CASE("lstm: parameter counts, names and initialisation") {
  CHECK(make(false).num_params() == 5221);
  CHECK(make(true).num_params() == 5301);
  CHECK(make(false).weight_names() == std::vector<std::string>{"cell1.weight_ih", "cell1.weight_hh", "cell1.bias_ih",
                                                               "cell1.bias_hh", "cell2.weight_ih", "cell2.weight_hh",
                                                               "cell2.bias_ih", "cell2.bias_hh", "head.weight",
                                                               "head.bias"});
  CHECK(make(true).architecture() == "lstm d=2 hidden=20");
  double largest = 0;
  for (const auto& w : make(false, 3).weights()) largest = std::max(largest, w.abs().max().item<double>());
  CHECK(largest <= 1.0 / std::sqrt(20.0));
  CHECK(largest > 0.9 / std::sqrt(20.0));
  const LstmOptimizer f32{LstmOptions{}};
  CHECK(f32.weights()[0].scalar_type() == at::kFloat);
  CHECK(f32.learning_rate() == 1.0);
}

TEST_CASE("lstm: the functional cell agrees with at::lstm_cell in double") {
  at::Generator gen = make_generator(5);
  const at::Tensor x = at::randn({7, 3}, gen, kF64), h = at::randn({7, 4}, gen, kF64), c = at::randn({7, 4}, gen, kF64);
  const at::Tensor w_ih = at::randn({16, 3}, gen, kF64), w_hh = at::randn({16, 4}, gen, kF64);
  const at::Tensor b_ih = at::randn({16}, gen, kF64), b_hh = at::randn({16}, gen, kF64);
  const auto [h1, c1] = lstm_cell(x, h, c, w_ih, w_hh, b_ih, b_hh);
  const auto ref = at::lstm_cell(x, {h, c}, w_ih, w_hh, b_ih, b_hh);
  CHECK(test::max_abs_diff(h1, std::get<0>(ref)) < 1e-14);
  CHECK(test::max_abs_diff(c1, std::get<1>(ref)) < 1e-14);
}

TEST_CASE("lstm: zero weights give u = head bias, and permutation equivariance") {
  SECTION("all LSTM weights and the head weight zero: u equals the head bias") {
    LstmOptions o;
    o.dtype = "float64";
    o.out_mul = 0.1;
    LstmOptimizer opt(o);
    TensorList w;
    for (const auto& t : opt.weights()) w.push_back(at::zeros_like(t));
    w.back() = at::full({1}, 0.7, kF64);
    opt.set_weights(w);
    const TensorList params = {at::ones({2, 3}, kF64)};
    const auto r = opt.update(params, {at::randn({2, 3}, kF64)}, at::Tensor(), opt.init(params));
    CHECK(test::max_abs_diff(r.params[0], at::full({2, 3}, 1.07, kF64)) < 1e-15);
    CHECK(r.state.slots.at("c2")[0].abs().max().item<double>() == 0.0);
  }
  SECTION("permuting coordinates permutes outputs and states") {
    for (const bool preprocess : {false, true}) {
      const LstmOptimizer opt = make(preprocess, 2);
      at::Generator gen = make_generator(6);
      const at::Tensor theta = at::randn({2, 6}, gen, kF64);
      const at::Tensor perm = at::randperm(6, gen, at::TensorOptions().dtype(at::kLong));
      const TensorList g0 = {at::randn({2, 6}, gen, kF64)}, g1 = {at::randn({2, 6}, gen, kF64)};
      const auto permute = [&](const TensorList& xs) { return TensorList{xs[0].index_select(1, perm)}; };
      const auto a1 = opt.update({theta}, g0, at::Tensor(), opt.init({theta}));
      const auto a2 = opt.update(a1.params, g1, at::Tensor(), a1.state);
      const TensorList tp = permute({theta});
      const auto b1 = opt.update(tp, permute(g0), at::Tensor(), opt.init(tp));
      const auto b2 = opt.update(b1.params, permute(g1), at::Tensor(), b1.state);
      CHECK(test::max_abs_diff(b2.params[0], a2.params[0].index_select(1, perm)) < 1e-14);
      for (const char* slot : {"h1", "c1", "h2", "c2"}) {
        CHECK(test::max_abs_diff(b2.state.slots.at(slot)[0], a2.state.slots.at(slot)[0].index_select(1, perm)) < 1e-14);
      }
    }
  }
}
