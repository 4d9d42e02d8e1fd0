#include "hamlet/tasks/hnn.hpp"

#include <cmath>

#include "dtype.hpp"
#include "hamlet/core/error.hpp"
#include "hamlet/core/seed.hpp"

namespace hamlet::tasks {
namespace {

constexpr double kTimeEnd = 3.0;
constexpr int64_t kRk4Substeps = 100;

// torch.nn.init.orthogonal_ (gain 1) of a [rows, cols] matrix: QR of a Gaussian matrix (transposed when wide), Q's
// columns signed by R's diagonal so that the result is Haar-distributed.
at::Tensor orthogonal(int64_t rows, int64_t cols, at::Generator& gen) {
  const bool wide = rows < cols;
  at::Tensor flat = at::empty({wide ? cols : rows, wide ? rows : cols}, at::TensorOptions().dtype(at::kDouble))
                        .normal_(0.0, 1.0, gen);
  auto [q, r] = at::linalg_qr(flat);
  q = q * at::diagonal(r).sign();
  return wide ? q.t().contiguous() : q;
}

// The start of a trajectory: a uniform direction (a point of [−1, 1)² normalised, as the reference) at a radius
// ~ U[lo, hi).
at::Tensor start_state(const std::string& system, at::Generator& gen) {
  const auto opts = at::TensorOptions().dtype(at::kDouble);
  const double lo = system == "spring" ? 0.1 : 1.3, hi = system == "spring" ? 1.0 : 2.3;
  const at::Tensor direction = at::empty({2}, opts).uniform_(-1.0, 1.0, gen);
  const double radius = at::empty({1}, opts).uniform_(lo, hi, gen).item<double>();
  return direction / direction.norm() * radius;
}

}  // namespace

int64_t HnnOptions::resolved_points() const { return points > 0 ? points : (system == "spring" ? 30 : 45); }

const OptionSpec<HnnOptions>& HnnOptions::spec() {
  using O = HnnOptions;
  static const auto s =
      OptionSpec<O>("hnn")
          .add("system", &O::system, "physical system", checks::one_of({"spring", "pendulum"}))
          .add("hidden", &O::hidden, "hidden layer sizes of the HNN, e.g. 64:64", checks::positive_list)
          .add("trajectories", &O::trajectories, "trajectories per problem", checks::positive)
          .add("points", &O::points, "points per trajectory (0 = the system's default: spring 30, pendulum 45)",
               [](const std::string& field, int64_t points) {
                 HAMLET_CHECK(points == 0 || points >= 2, field, " must be 0 (the system's default) or >= 2, got ",
                              points);
               })
          .add("noise", &O::noise, "standard deviation of the observation noise", checks::non_negative)
          .add("dtype", &O::dtype, "float32 | float64", detail::check_dtype);
  return s;
}

at::Tensor hnn_true_field(const std::string& system, const at::Tensor& x) {
  const at::Tensor q = x.select(-1, 0), p = x.select(-1, 1);
  if (system == "spring") return at::stack({2.0 * p, -2.0 * q}, -1);
  HAMLET_CHECK(system == "pendulum", "hnn: unknown system '", system, "'");
  return at::stack({2.0 * p, -3.0 * q.sin()}, -1);
}

at::Tensor hnn_trajectories(const std::string& system, const at::Tensor& x0, const at::Tensor& t) {
  HAMLET_CHECK(x0.dim() == 2 && x0.size(1) == 2 && t.dim() == 1, "hnn: trajectories need starts [M, 2] and times [T]");
  if (system == "spring") {
    // q(t) = q0 cos 2t + p0 sin 2t, p(t) = p0 cos 2t − q0 sin 2t.
    const at::Tensor c = (2.0 * t).cos().unsqueeze(0), s = (2.0 * t).sin().unsqueeze(0);
    const at::Tensor q0 = x0.select(1, 0).unsqueeze(1), p0 = x0.select(1, 1).unsqueeze(1);
    return at::stack({q0 * c + p0 * s, p0 * c - q0 * s}, -1);
  }
  // Classical RK4 between consecutive times: the pendulum has no elementary closed form.
  std::vector<at::Tensor> states = {x0};
  at::Tensor x = x0;
  for (int64_t k = 1; k < t.size(0); ++k) {
    const double h = (t[k].item<double>() - t[k - 1].item<double>()) / static_cast<double>(kRk4Substeps);
    for (int64_t s = 0; s < kRk4Substeps; ++s) {
      const at::Tensor k1 = hnn_true_field(system, x);
      const at::Tensor k2 = hnn_true_field(system, x + 0.5 * h * k1);
      const at::Tensor k3 = hnn_true_field(system, x + 0.5 * h * k2);
      const at::Tensor k4 = hnn_true_field(system, x + h * k3);
      x = x + (h / 6.0) * (k1 + 2.0 * k2 + 2.0 * k3 + k4);
    }
    states.push_back(x);
  }
  return at::stack(states, 1);
}

at::Tensor hnn_field_loss(const at::Tensor& field, const at::Tensor& target) {
  return (target - field).square().mean({1, 2});
}

HnnBatch::HnnBatch(at::Tensor x, at::Tensor x_dot, TensorList params0)
    : x_(std::move(x)), x_dot_(std::move(x_dot)), params0_(std::move(params0)) {
  HAMLET_CHECK(x_.dim() == 3 && x_.size(2) == 2 && x_dot_.sizes() == x_.sizes(),
               "HnnBatch expects x and its time derivative [B, N, 2], got ", x_.sizes(), " and ", x_dot_.sizes());
  HAMLET_CHECK(params0_.size() % 2 == 1 && params0_.size() >= 3, "HnnBatch expects w0, b0, ..., w_k, got ",
               params0_.size(), " tensors");
}

std::vector<std::string> HnnBatch::param_names() const {
  std::vector<std::string> names;
  const std::size_t layers = (params0_.size() + 1) / 2;
  for (std::size_t l = 0; l < layers; ++l) {
    names.push_back("w" + std::to_string(l));
    if (l + 1 < layers) names.push_back("b" + std::to_string(l));
  }
  return names;
}

at::Tensor HnnBatch::hamiltonian(const TensorList& params, const at::Tensor& x) const {
  at::Tensor h = x;
  const std::size_t hidden = params.size() / 2;
  for (std::size_t l = 0; l < hidden; ++l) {
    h = at::baddbmm(params[2 * l + 1].unsqueeze(1), h, params[2 * l].transpose(1, 2)).tanh();
  }
  return at::bmm(h, params.back().transpose(1, 2)).squeeze(-1);
}

at::Tensor HnnBatch::input_grad(const TensorList& params, const at::Tensor& x) const {
  // Forward keeping every tanh output, then the chain rule back to the input: δ ← ((1 − s²) ⊙ δ) W.
  const std::size_t hidden = params.size() / 2;
  std::vector<at::Tensor> s;
  at::Tensor h = x;
  for (std::size_t l = 0; l < hidden; ++l) {
    h = at::baddbmm(params[2 * l + 1].unsqueeze(1), h, params[2 * l].transpose(1, 2)).tanh();
    s.push_back(h);
  }
  at::Tensor delta = params.back().expand({x.size(0), x.size(1), params.back().size(2)});  // ∂H/∂s_last
  for (std::size_t l = hidden; l-- > 0;) delta = at::bmm((1.0 - s[l] * s[l]) * delta, params[2 * l]);
  return delta;
}

at::Tensor HnnBatch::loss(const TensorList& params, int64_t /*step*/) const {
  HAMLET_CHECK(params.size() == params0_.size(), "hnn loss expects ", params0_.size(), " parameter tensors, got ",
               params.size());
  const at::Tensor grad = input_grad(params, x_);
  // S = (∂H/∂p, −∂H/∂q).
  const at::Tensor field = at::stack({grad.select(-1, 1), -grad.select(-1, 0)}, -1);
  return hnn_field_loss(field, x_dot_);
}

HnnTask::HnnTask(HnnOptions options) : options_(std::move(options)) {
  options_.validate();
  // Runs record the number of points they used, not the request for the default.
  options_.points = options_.resolved_points();
}

int64_t HnnTask::num_params() const {
  int64_t n = 0, in = 2;
  for (auto h : options_.hidden) {
    n += h * in + h;
    in = h;
  }
  return n + in;
}

std::unique_ptr<ProblemBatch> HnnTask::sample(Split split, uint64_t seed, int64_t first, int64_t count,
                                              c10::Device device) const {
  HAMLET_CHECK(count > 0 && first >= 0, "hnn: cannot sample ", count, " problems from index ", first);
  const auto f64 = at::TensorOptions().dtype(at::kDouble);
  const at::Tensor times = at::linspace(0.0, kTimeEnd, options_.resolved_points(), f64);
  std::vector<at::Tensor> xs, dxs;
  std::vector<TensorList> params(2 * options_.hidden.size() + 1);
  for (int64_t i = first; i < first + count; ++i) {
    // Everything in float64 from the problem's own generator: the same problem in every dtype and batch.
    at::Generator gen = make_generator(problem_seed(split, seed, i));
    std::vector<at::Tensor> starts;
    for (int64_t k = 0; k < options_.trajectories; ++k) starts.push_back(start_state(options_.system, gen));
    const at::Tensor states = hnn_trajectories(options_.system, at::stack(starts), times).reshape({-1, 2});
    dxs.push_back(hnn_true_field(options_.system, states));
    xs.push_back(states + options_.noise * at::randn(states.sizes(), gen, f64));
    int64_t in = 2;
    for (std::size_t l = 0; l < options_.hidden.size(); ++l) {
      const int64_t out = options_.hidden[l];
      const double bound = 1.0 / std::sqrt(static_cast<double>(in));
      params[2 * l].push_back(orthogonal(out, in, gen));
      params[2 * l + 1].push_back(at::empty({out}, f64).uniform_(-bound, bound, gen));
      in = out;
    }
    params.back().push_back(orthogonal(1, in, gen));
  }
  const auto dtype = detail::parse_dtype("hnn", options_.dtype);
  TensorList params0;
  for (const auto& list : params) params0.push_back(at::stack(list).to(device, dtype));
  return std::make_unique<HnnBatch>(at::stack(xs).to(device, dtype), at::stack(dxs).to(device, dtype),
                                    std::move(params0));
}

}  // namespace hamlet::tasks
