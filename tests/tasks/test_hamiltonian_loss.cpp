#include "support/catch.hpp"

#include <torch/csrc/autograd/autograd.h>
#include <torch/nn/functional/loss.h>

#include "hamlet/core/error.hpp"
#include "hamlet/core/seed.hpp"
#include "hamlet/tasks/hamiltonian_loss.hpp"
#include "support/test_support.hpp"

using namespace hamlet;
using namespace hamlet::tasks;
using Catch::Contains;

namespace {
const auto kF64 = at::TensorOptions().dtype(at::kDouble);
}

TEST_CASE("hamiltonian_loss: the §7.3 known answer, W = [[3, 4]], b = [0] gives 0.05 with zero gradient (faithful)") {
  TensorList params = fresh_leaves({at::tensor({3.0, 4.0}, kF64).view({1, 1, 2}), at::zeros({1, 1}, kF64)});
  const at::Tensor term = hamiltonian_regulariser(params, HamiltonianLossMode::kFaithful, 0.01);
  CHECK(term.item<double>() == Approx(0.05).margin(1e-15));
  CHECK(!term.requires_grad());  // detached: no path to the parameters at all
  // The whole loss: the gradient is the cross-entropy's alone; the term shifts only the value.
  const at::Tensor logits = at::tensor({0.2, -0.1}, kF64).view({1, 1, 2}) + 0 * params[0].sum();
  const at::Tensor labels = at::zeros({1, 1}, at::kLong);
  const at::Tensor with = hamiltonian_loss(logits, labels, params, HamiltonianLossMode::kFaithful, 0.01);
  const at::Tensor without = hamiltonian_loss(logits, labels, params, HamiltonianLossMode::kFaithful, 0.0);
  CHECK((with - without).item<double>() == Approx(0.05).margin(1e-15));
  const TensorList g = torch::autograd::grad({with.sum()}, params, {}, false, false, /*allow_unused=*/true);
  CHECK((!g[0].defined() || g[0].abs().max().item<double>() == 0.0));
  // l2 on the same tensors: 0.01 · ½ · (9 + 16) = 0.125, gradient λθ = (0.03, 0.04).
  const at::Tensor l2 = hamiltonian_regulariser(params, HamiltonianLossMode::kL2, 0.01);
  CHECK(l2.item<double>() == Approx(0.125).margin(1e-15));
  const TensorList gl2 = torch::autograd::grad({l2.sum()}, params);
  CHECK(hamlet::test::max_abs_diff(gl2[0], at::tensor({0.03, 0.04}, kF64).view({1, 1, 2})) < 1e-15);
}

TEST_CASE("hamiltonian_loss agrees with LibTorch's cross_entropy plus norms read out as host floats, per problem") {
  at::Generator gen = make_generator(4);
  const int64_t b = 3, m = 7;
  const at::Tensor logits = at::randn({b, m, 2}, gen, kF64);
  const at::Tensor labels = at::randint(0, 2, {b, m}, gen, at::TensorOptions().dtype(at::kLong));
  const TensorList params{at::randn({b, 4, 5}, gen, kF64), at::randn({b, 4}, gen, kF64)};
  for (const auto mode : {HamiltonianLossMode::kFaithful, HamiltonianLossMode::kL2}) {
    const at::Tensor got = hamiltonian_loss(logits, labels, params, mode, 0.01);
    for (int64_t i = 0; i < b; ++i) {
      double reg = 0;
      for (const auto& p : params) {
        // The seed's faithful term: torch.norm(param) per tensor as a Python float; l2: ½Σθ².
        const double norm = p[i].norm().item<double>();
        reg += mode == HamiltonianLossMode::kFaithful ? norm : 0.5 * norm * norm;
      }
      const double ce = torch::nn::functional::cross_entropy(logits[i], labels[i]).item<double>();
      CHECK(got[i].item<double>() == Approx(ce + 0.01 * reg).epsilon(1e-13));
    }
  }
  CHECK(parse_hamiltonian_loss_mode("l2") == HamiltonianLossMode::kL2);
  CHECK(hamiltonian_loss_mode_name(HamiltonianLossMode::kFaithful) == "faithful");
  CHECK_THROWS_WITH(parse_hamiltonian_loss_mode("l1"), Contains("valid: faithful, l2"));
}
