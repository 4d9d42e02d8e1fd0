#include <torch/csrc/autograd/autograd.h>

#include <cmath>

#include "hamlet/core/seed.hpp"
#include "hamlet/tasks/hnn.hpp"
#include "hamlet/tasks/registry.hpp"
#include "support/catch.hpp"
#include "support/test_support.hpp"

using namespace hamlet;
using namespace hamlet::tasks;

namespace {

const auto kF64 = at::TensorOptions().dtype(at::kDouble);
const c10::Device kCpu(c10::kCPU);

HnnOptions small(const std::string& system, double noise = 0.1) {
  HnnOptions o;
  o.system = system;
  o.hidden = {8, 6};
  o.trajectories = 3;
  o.noise = noise;
  o.dtype = "float64";
  return o;
}

const HnnBatch& as_hnn(const ProblemBatch& b) { return dynamic_cast<const HnnBatch&>(b); }

}  // namespace

TEST_CASE("hnn: true fields and trajectories (docs/methods.md 8.5 known answers, 8.2 dynamics)") {
  // Spring H = q² + p²: S(1, 0) = (0, −2), S(0.3, −0.4) = (−0.8, −0.6); pendulum H = 3(1 − cos q) + p²: S(π/2, 1) = (2, −3).
  CHECK(test::max_abs_diff(hnn_true_field("spring", at::tensor({1.0, 0.0}, kF64)), at::tensor({0.0, -2.0}, kF64)) ==
        0.0);
  CHECK(test::max_abs_diff(hnn_true_field("spring", at::tensor({0.3, -0.4}, kF64)), at::tensor({-0.8, -0.6}, kF64)) <
        1e-15);
  CHECK(test::max_abs_diff(hnn_true_field("pendulum", at::tensor({M_PI / 2, 1.0}, kF64)), at::tensor({2.0, -3.0}, kF64)) <
        1e-15);
  // Trajectories conserve the energy: exactly (closed form) for the spring, to RK4's error for the pendulum; and
  // they solve ẋ = S(x) (central differences of the sampled states).
  at::Generator gen = make_generator(2);
  const at::Tensor x0 = at::randn({4, 2}, gen, kF64);
  const at::Tensor t = at::linspace(0.0, 3.0, 301, kF64);
  const at::Tensor spring = hnn_trajectories("spring", x0, t);
  const at::Tensor e_spring = spring.square().sum(-1);
  CHECK(test::max_abs_diff(e_spring, e_spring.select(1, 0).unsqueeze(1).expand_as(e_spring)) < 1e-13);
  const at::Tensor pend = hnn_trajectories("pendulum", x0, t);
  const at::Tensor e_pend = 3.0 * (1.0 - pend.select(-1, 0).cos()) + pend.select(-1, 1).square();
  CHECK(test::max_abs_diff(e_pend, e_pend.select(1, 0).unsqueeze(1).expand_as(e_pend)) < 1e-10);
  for (const auto& [system, traj] : {std::pair<std::string, at::Tensor>{"spring", spring}, {"pendulum", pend}}) {
    INFO(system);
    const at::Tensor central = (traj.narrow(1, 2, 299) - traj.narrow(1, 0, 299)) / (2 * 0.01);
    CHECK(test::max_abs_diff(central, hnn_true_field(system, traj.narrow(1, 1, 299))) < 1e-3);
  }
}

TEST_CASE("hnn: the analytic Hamiltonian has zero loss on noise-free data, the noise is the residual") {
  for (const std::string system : {"spring", "pendulum"}) {
    INFO(system);
    const HnnTask clean(small(system, 0.0));
    const auto batch = clean.sample(Split::kTrain, 0, 0, 2, kCpu);
    const HnnBatch& b = as_hnn(*batch);
    CHECK(b.x().sizes() == at::IntArrayRef({2, 3 * (system == "spring" ? 30 : 45), 2}));
    // The field of the true H at the data states reproduces the targets: loss 0.
    CHECK(hnn_field_loss(hnn_true_field(system, b.x()), b.x_dot()).max().item<double>() < 1e-24);
    // Starting radii as specified.
    const at::Tensor r = b.x().select(1, 0).norm(2, -1);
    CHECK(r.min().item<double>() >= (system == "spring" ? 0.1 : 1.3));
    CHECK(r.max().item<double>() < (system == "spring" ? 1.0 : 2.3));
    // With noise the states move by N(0, 0.1²) while the targets stay: same targets, states 0.1 away on average.
    const HnnTask noisy(small(system, 0.1));
    const auto nb = noisy.sample(Split::kTrain, 0, 0, 2, kCpu);
    CHECK(at::equal(as_hnn(*nb).x_dot(), b.x_dot()));
    const double rms = (as_hnn(*nb).x() - b.x()).square().mean().sqrt().item<double>();
    CHECK(rms == Approx(0.1).margin(0.02));
  }
}

TEST_CASE("hnn: closed-form ∂H/∂x equals autograd, the loss gradient matches central differences") {
  const HnnTask task(small("pendulum"));
  const auto batch = task.sample(Split::kTest, 3, 0, 2, kCpu);
  const HnnBatch& b = as_hnn(*batch);
  const TensorList params = b.initial_params();
  CHECK(b.param_names() == std::vector<std::string>{"w0", "b0", "w1", "b1", "w2"});
  CHECK(params[0].sizes() == at::IntArrayRef({2, 8, 2}));
  CHECK(params[4].sizes() == at::IntArrayRef({2, 1, 6}));
  CHECK(task.num_params() == 8 * 2 + 8 + 6 * 8 + 6 + 6);
  // Orthogonal weights: W Wᵀ = I for the wide first hidden-to-hidden layer [6, 8], Wᵀ W = I for the tall [8, 2].
  CHECK(test::max_abs_diff(at::bmm(params[2], params[2].transpose(1, 2)), at::eye(6, kF64).expand({2, 6, 6})) < 1e-12);
  CHECK(test::max_abs_diff(at::bmm(params[0].transpose(1, 2), params[0]), at::eye(2, kF64).expand({2, 2, 2})) < 1e-12);

  const at::Tensor x = b.x().detach().requires_grad_(true);
  const at::Tensor h = b.hamiltonian(params, x);
  const at::Tensor autograd = torch::autograd::grad({h.sum()}, {x})[0];
  CHECK(test::max_abs_diff(b.input_grad(params, b.x()), autograd) < 1e-13);
  // The model's own field is tangent to its level sets: ∇H · S = 0.
  const at::Tensor g = b.input_grad(params, b.x());
  const at::Tensor s = at::stack({g.select(-1, 1), -g.select(-1, 0)}, -1);
  CHECK((g * s).sum(-1).abs().max().item<double>() < 1e-15);

  // ∇_θ F (one backward through the closed form) against central differences along a random direction.
  TensorList leaves;
  for (const auto& p : params) leaves.push_back(p.detach().requires_grad_(true));
  const at::Tensor loss = b.loss(leaves, 0);
  CHECK(loss.sizes() == at::IntArrayRef({2}));
  const TensorList grads = torch::autograd::grad({loss.sum()}, leaves);
  at::Generator gen = make_generator(4);
  TensorList dir, plus, minus;
  const double eps = 1e-6;
  at::Tensor directional = at::zeros({2}, kF64);
  for (std::size_t i = 0; i < params.size(); ++i) {
    dir.push_back(at::randn(params[i].sizes(), gen, kF64));
    plus.push_back(params[i] + eps * dir[i]);
    minus.push_back(params[i] - eps * dir[i]);
    directional += (grads[i] * dir[i]).flatten(1).sum(1);
  }
  const at::Tensor fd = (b.loss(plus, 0) - b.loss(minus, 0)) / (2 * eps);
  CHECK(test::max_abs_diff(fd, directional) < 1e-7 * std::max(1.0, directional.abs().max().item<double>()));
}

TEST_CASE("hnn: problems are paired, batching does not change them, float32 matches float64") {
  const HnnTask task(small("spring"));
  const auto all = task.sample(Split::kValidation, 7, 0, 3, kCpu);
  const auto one = task.sample(Split::kValidation, 7, 2, 1, kCpu);
  CHECK(at::equal(as_hnn(*all).x().narrow(0, 2, 1), as_hnn(*one).x()));
  const TensorList pa = all->initial_params(), po = one->initial_params();
  for (std::size_t i = 0; i < pa.size(); ++i) CHECK(at::equal(pa[i].narrow(0, 2, 1), po[i]));
  CHECK(test::max_abs_diff(all->loss(pa, 0).narrow(0, 2, 1), one->loss(po, 5)) == 0.0);
  const auto other = task.sample(Split::kTest, 7, 2, 1, kCpu);
  CHECK_FALSE(at::equal(as_hnn(*other).x(), as_hnn(*one).x()));
  HnnOptions f32 = small("spring");
  f32.dtype = "float32";
  const auto single = HnnTask(f32).sample(Split::kValidation, 7, 0, 3, kCpu);
  CHECK(single->initial_params()[0].scalar_type() == at::kFloat);
  CHECK(test::max_abs_diff(single->loss(single->initial_params(), 0).to(at::kDouble), all->loss(pa, 0)) < 1e-5);
}

TEST_CASE("hnn: registry, defaults and option errors") {
  const auto task = make_task("hnn", {});
  CHECK(task->name() == "hnn");
  CHECK(task->options() == OptionMap{{"system", "spring"}, {"hidden", "64:64"}, {"trajectories", "25"},
                                     {"points", "30"}, {"noise", "0.1"}, {"dtype", "float32"}});
  CHECK(make_task("hnn", {{"system", "pendulum"}})->options().at("points") == "45");
  CHECK(HnnTask().num_params() == 4416);
  CHECK_THROWS_WITH(make_task("hnn", {{"system", "double-pendulum"}}), Catch::Contains("hnn.system"));
  CHECK_THROWS_WITH(make_task("hnn", {{"points", "1"}}), Catch::Contains("hnn.points"));
  CHECK_THROWS_WITH(make_task("hnn", {{"noise", "-1"}}), Catch::Contains("hnn.noise"));
  CHECK_THROWS_WITH(make_task("hnn", {{"hiden", "3"}}), Catch::Contains("hiden"));
}
