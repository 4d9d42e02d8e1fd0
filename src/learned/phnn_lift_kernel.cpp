#include "hamlet/learned/phnn_lift_kernel.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "hamlet/core/error.hpp"
#include "hamlet/core/parallel.hpp"
#include "hamlet/learned/mlp_lopt.hpp"
#include "kernel_math.hpp"

namespace hamlet::learned {
namespace {

// Coordinates per block. Each quantity of a block is stored as [component][kBlock], so that the loops run over the
// block's coordinates with one operation on contiguous values and vectorise (as phnn_kernel.cpp). Sums are kept per
// lane and added up after the last block: a loop that adds into one scalar does not vectorise without reassociation.
constexpr int64_t kBlock = 64;

// float32 with the call-free tanh so that the hidden-unit loop vectorises; float64 keeps std::tanh, the tensor path's
// accuracy (a float64 loop with a library call does not vectorise either way).
HAMLET_KERNEL_INLINE inline float hidden_tanh(float x) { return kernel::tanh_of(x); }
HAMLET_KERNEL_INLINE inline double hidden_tanh(double x) { return std::tanh(x); }

// Pointers of one problem's slice of one tensor (n coordinates).
template <typename T>
struct Slice {
  const T *theta, *g, *p, *v;
  T *theta_next, *p_next, *v_next;
  int64_t n;
};

// A problem's contributions to the diagnostics.
struct Sums {
  double h_before = 0, h_after = 0, dissipated = 0, supplied = 0;
};

// Scratch of one block ([component][kBlock]) and the per-lane sums, sized for k and w once per step.
template <typename T>
struct Scratch {
  std::vector<T> g, m, inv_m, q_dot, acc, term, pn, z, s, out;
  std::vector<double> energy, sq, h_before, h_after, dissipated, supplied, q_dot_sq;
  Scratch(int64_t k, int64_t w) {
    const auto lanes = static_cast<std::size_t>(kBlock), uk = static_cast<std::size_t>(k);
    for (auto* x : {&g, &m, &inv_m, &q_dot, &acc, &term}) x->assign(lanes, T(0));
    pn.assign(uk * lanes, T(0));
    z.assign((uk + 2) * lanes, T(0));
    s.assign(static_cast<std::size_t>(w) * lanes, T(0));
    out.assign((uk + 1) * lanes, T(0));
    energy.assign(lanes, 0.0);
    sq.assign((uk + 2) * lanes, 0.0);
    for (auto* x : {&h_before, &h_after, &dissipated, &supplied, &q_dot_sq}) x->assign(lanes, 0.0);
  }
};

double lane_sum(const std::vector<double>& x, std::size_t first = 0) {
  double sum = 0;
  for (int64_t r = 0; r < kBlock; ++r) sum += x[first + static_cast<std::size_t>(r)];
  return sum;
}

template <typename T>
struct LiftKernel {
  int64_t k = 0, w = 0, f = 0;  // momenta, hidden width, columns of W0 (k + 2, + 11 with time features)
  std::vector<T> beta, one_minus_beta, rho;  // [k]
  std::vector<T> w0, bias0, w2, b2;          // W0 [w, f] (the first k + 2 columns read), b0 + W0_time · time [w],
                                             // W2 [k + 1, w], b2 [k + 1]
  T beta_v = 0, one_minus_beta_v = 0, eps = 0, speed = 0, inv_k = 0, alpha = 0, out_mul = 0, weight_decay = 0;
  double speed_squared = 0;
  bool constant_mass = false, relativistic = false, normalise = true;

  // K per coordinate from its energy terms summed over the momenta (Σ p_i² or Σ s_i / (√(1 + s_i) + 1), s_i =
  // (p_i / (c m))²): Σ p² / (2m) or c² m Σ (lift::kinetic_energy), added to `sum`.
  HAMLET_KERNEL_INLINE void add_energy(const T* __restrict__ m, const double* __restrict__ terms, int64_t n,
                                       double* __restrict__ sum) const {
    if (relativistic) {
      const double c2 = speed_squared;
      for (int64_t r = 0; r < n; ++r) sum[r] += c2 * static_cast<double>(m[r]) * terms[r];
    } else {
      for (int64_t r = 0; r < n; ++r) sum[r] += terms[r] / (2.0 * static_cast<double>(m[r]));
    }
  }

  // The metric of n coordinates from their new second moments v: m = √v + eps (mass = constant: 1) and 1/m. Pass 2
  // computes it again from v' rather than keeping a full-size m between the passes.
  HAMLET_KERNEL_INLINE void metric_block(const T* __restrict__ v, int64_t n, T* __restrict__ m,
                                         T* __restrict__ inv_m) const {
    if (constant_mass) {
      std::fill(m, m + n, T(1));
    } else {
      const T e = eps;
      for (int64_t r = 0; r < n; ++r) m[r] = std::sqrt(v[r]) + e;
    }
    for (int64_t r = 0; r < n; ++r) inv_m[r] = T(1) / m[r];
  }

  // Pass 1 over a block: the metric, the ports (p' and v' written out), the diagnostics of the carried-in momenta
  // and the features' sums of squares.
  HAMLET_KERNEL_INLINE void ports_block(const Slice<T>& x, int64_t first, int64_t n, Scratch<T>& sc) const {
    T* __restrict__ g = sc.g.data();
    T* __restrict__ m = sc.m.data();
    T* __restrict__ inv_m = sc.inv_m.data();
    T* __restrict__ pn = sc.pn.data();
    double* __restrict__ energy = sc.energy.data();
    double* __restrict__ sq = sc.sq.data();
    double* __restrict__ dissipated = sc.dissipated.data();
    double* __restrict__ supplied = sc.supplied.data();
    double* __restrict__ h_before = sc.h_before.data();
    const T* __restrict__ g_in = x.g + first;
    const T* __restrict__ v_in = x.v + first;
    T* __restrict__ v_next = x.v_next + first;
    const T bv = beta_v, obv = one_minus_beta_v;
    for (int64_t r = 0; r < n; ++r) {
      const T gi = g_in[r];
      v_next[r] = bv * v_in[r] + obv * (gi * gi);
      g[r] = gi;
    }
    metric_block(v_next, n, m, inv_m);
    double* __restrict__ sq_last = sq + (k + 1) * kBlock;
    for (int64_t r = 0; r < n; ++r) {
      const T gm = g[r] * inv_m[r];
      energy[r] = 0;
      sq[r] += static_cast<double>(g[r]) * g[r];
      sq_last[r] += static_cast<double>(gm) * gm;
    }
    for (int64_t j = 0; j < k; ++j) {
      const T b = beta[j], c = one_minus_beta[j], rj = rho[j];
      double* __restrict__ sqj = sq + (j + 1) * kBlock;
      T* __restrict__ p = pn + j * kBlock;  // the carried-in p_j of the block
      for (int64_t r = 0; r < n; ++r) {
        const int64_t idx = (first + r) * k + j;
        p[r] = x.p[idx];
        const T p_next = b * p[r] + c * g[r];
        x.p_next[idx] = p_next;
        const T feature = p_next * inv_m[r];
        sqj[r] += static_cast<double>(feature) * feature;
      }
      // ∂K/∂p, the dissipation r = ρ p / ∂K/∂p and the energy term at the carried-in p (lift::kinetic_grad,
      // lift::dissipation, lift::kinetic_energy).
      if (relativistic) {
        const T c_speed = speed;
        for (int64_t r = 0; r < n; ++r) {
          const T ratio = p[r] / (c_speed * m[r]);
          const T s = ratio * ratio, root = std::sqrt(T(1) + s);
          const T grad = (p[r] / m[r]) / root, rate = rj * m[r] * root;
          energy[r] += static_cast<double>(s / (root + T(1)));
          dissipated[r] += static_cast<double>(rate * (grad * grad));
          supplied[r] += static_cast<double>(grad * rj * g[r]);
        }
      } else {
        for (int64_t r = 0; r < n; ++r) {
          const T grad = p[r] / m[r], rate = rj * m[r];
          energy[r] += static_cast<double>(p[r]) * p[r];
          dissipated[r] += static_cast<double>(rate * (grad * grad));
          supplied[r] += static_cast<double>(grad * rj * g[r]);
        }
      }
    }
    add_energy(m, energy, n, h_before);
  }

  // Pass 2 over a block: the normalised features, the net, q̇ into theta_next, Σ q̇² and H_after.
  HAMLET_KERNEL_INLINE void velocity_block(const Slice<T>& x, int64_t first, int64_t n, const T* inv_rms,
                                           Scratch<T>& sc) const {
    T* __restrict__ g = sc.g.data();
    T* __restrict__ m = sc.m.data();
    T* __restrict__ inv_m = sc.inv_m.data();
    T* __restrict__ pn = sc.pn.data();
    T* __restrict__ z = sc.z.data();
    T* __restrict__ s = sc.s.data();
    T* __restrict__ out = sc.out.data();
    T* __restrict__ acc = sc.acc.data();
    T* __restrict__ term = sc.term.data();
    T* __restrict__ q_dot = sc.q_dot.data();
    double* __restrict__ energy = sc.energy.data();
    const T* __restrict__ g_in = x.g + first;
    const T* __restrict__ v_in = x.v_next + first;
    for (int64_t r = 0; r < n; ++r) g[r] = g_in[r];
    metric_block(v_in, n, m, inv_m);
    for (int64_t j = 0; j < k; ++j)
      for (int64_t r = 0; r < n; ++r) pn[j * kBlock + r] = x.p_next[(first + r) * k + j];
    // Lanes past the slice's end compute on zero momenta and gradients (finite values, never written or summed).
    for (int64_t r = n; r < kBlock; ++r) {
      g[r] = 0;
      m[r] = 1;
      inv_m[r] = 1;
      for (int64_t j = 0; j < k; ++j) pn[j * kBlock + r] = 0;
    }
    const T scale_g = inv_rms[0], scale_gm = inv_rms[k + 1];
    T* __restrict__ z_gm = z + (k + 1) * kBlock;
    for (int64_t r = 0; r < kBlock; ++r) {
      z[r] = g[r] * scale_g;
      z_gm[r] = (g[r] * inv_m[r]) * scale_gm;
    }
    for (int64_t j = 0; j < k; ++j) {
      const T scale = inv_rms[j + 1];
      for (int64_t r = 0; r < kBlock; ++r) z[(j + 1) * kBlock + r] = (pn[j * kBlock + r] * inv_m[r]) * scale;
    }
    const int64_t features = k + 2;
    for (int64_t u = 0; u < w; ++u) {
      T* su = s + u * kBlock;
      const T bias = bias0[u];
      for (int64_t r = 0; r < kBlock; ++r) su[r] = bias;
      for (int64_t c = 0; c < features; ++c) {
        const T wc = w0[u * f + c];
        const T* zc = z + c * kBlock;
        for (int64_t r = 0; r < kBlock; ++r) su[r] += wc * zc[r];
      }
      for (int64_t r = 0; r < kBlock; ++r) su[r] = hidden_tanh(su[r]);
    }
    for (int64_t o = 0; o <= k; ++o) {
      T* so = out + o * kBlock;
      const T bias = b2[o];
      for (int64_t r = 0; r < kBlock; ++r) so[r] = bias;
      for (int64_t u = 0; u < w; ++u) {
        const T wu = w2[o * w + u];
        const T* su = s + u * kBlock;
        for (int64_t r = 0; r < kBlock; ++r) so[r] += wu * su[r];
      }
    }
    // q̇ = −Σ_i κ_i ∂K/∂p_i(p') − (δ/m) g (lift::velocity); the energy terms of H_after (lift::kinetic_energy).
    for (int64_t r = 0; r < kBlock; ++r) acc[r] = 0;
    for (int64_t r = 0; r < n; ++r) energy[r] = 0;
    const T c_speed = speed, share = inv_k;
    for (int64_t j = 0; j < k; ++j) {
      const T* pj = pn + j * kBlock;
      const T* aj = out + j * kBlock;
      if (relativistic) {
        for (int64_t r = 0; r < kBlock; ++r) {
          const T ratio = pj[r] / (c_speed * m[r]);
          const T s2 = ratio * ratio, root = std::sqrt(T(1) + s2);
          acc[r] += (aj[r] + share) * ((pj[r] / m[r]) / root);
          term[r] = s2 / (root + T(1));
        }
        for (int64_t r = 0; r < n; ++r) energy[r] += static_cast<double>(term[r]);
      } else {
        for (int64_t r = 0; r < kBlock; ++r) acc[r] += (aj[r] + share) * (pj[r] / m[r]);
        for (int64_t r = 0; r < n; ++r) energy[r] += static_cast<double>(pj[r]) * pj[r];
      }
    }
    const T* direct = out + k * kBlock;
    for (int64_t r = 0; r < kBlock; ++r) q_dot[r] = -acc[r] - direct[r] / m[r] * g[r];
    double* __restrict__ q_dot_sq = sc.q_dot_sq.data();
    T* __restrict__ q_dot_out = x.theta_next + first;
    for (int64_t r = 0; r < n; ++r) {
      q_dot_out[r] = q_dot[r];
      q_dot_sq[r] += static_cast<double>(q_dot[r]) * q_dot[r];
    }
    add_energy(m, energy, n, sc.h_after.data());
  }

  // The three passes over coordinates [begin, end) of one problem's slice (a chunk; core/parallel.hpp): pass 1 adds
  // into the chunk's scratch the features' sums of squares and the diagnostics of the carried-in momenta, pass 2
  // (given 1/RMS of every feature channel over the whole slice) Σ q̇² and H_after, pass 3 (given the slice's RMS of
  // q̇) writes θ'.
  HAMLET_KERNEL_INLINE void ports_pass(const Slice<T>& x, int64_t begin, int64_t end, Scratch<T>& sc) const {
    for (int64_t first = begin; first < end; first += kBlock) ports_block(x, first, std::min(kBlock, end - first), sc);
  }
  HAMLET_KERNEL_INLINE void velocity_pass(const Slice<T>& x, int64_t begin, int64_t end, const T* inv_rms,
                                          Scratch<T>& sc) const {
    for (int64_t first = begin; first < end; first += kBlock)
      velocity_block(x, first, std::min(kBlock, end - first), inv_rms, sc);
  }
  HAMLET_KERNEL_INLINE void update_pass(const Slice<T>& x, int64_t begin, int64_t end, T rms) const {
    T* __restrict__ theta_next = x.theta_next;
    const T* __restrict__ theta = x.theta;
    const T a = alpha, lambda = weight_decay, scale = out_mul;
    if (lambda != T(0)) {
      for (int64_t i = begin; i < end; ++i)
        theta_next[i] = theta[i] + scale * (a * (theta_next[i] / rms) - lambda * theta[i]);
    } else {
      for (int64_t i = begin; i < end; ++i) theta_next[i] = theta[i] + scale * (a * (theta_next[i] / rms));
    }
  }
};

// The passes in three ISA variants (GCC function multiversioning picks one at load time); the clones compute the
// same arithmetic in the same order (no reassociation across lanes), except that GCC contracts a·b + c into one FMA
// where the ISA has it, so clones may differ in the last bit; one machine always runs the same clone.
#define HAMLET_LIFT_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
HAMLET_LIFT_CLONES void ports_float(const LiftKernel<float>& k, const Slice<float>& x, int64_t b, int64_t e,
                                    Scratch<float>& sc) {
  k.ports_pass(x, b, e, sc);
}
HAMLET_LIFT_CLONES void ports_double(const LiftKernel<double>& k, const Slice<double>& x, int64_t b, int64_t e,
                                     Scratch<double>& sc) {
  k.ports_pass(x, b, e, sc);
}
HAMLET_LIFT_CLONES void velocity_float(const LiftKernel<float>& k, const Slice<float>& x, int64_t b, int64_t e,
                                       const float* inv_rms, Scratch<float>& sc) {
  k.velocity_pass(x, b, e, inv_rms, sc);
}
HAMLET_LIFT_CLONES void velocity_double(const LiftKernel<double>& k, const Slice<double>& x, int64_t b, int64_t e,
                                        const double* inv_rms, Scratch<double>& sc) {
  k.velocity_pass(x, b, e, inv_rms, sc);
}
HAMLET_LIFT_CLONES void update_float(const LiftKernel<float>& k, const Slice<float>& x, int64_t b, int64_t e,
                                     float rms) {
  k.update_pass(x, b, e, rms);
}
HAMLET_LIFT_CLONES void update_double(const LiftKernel<double>& k, const Slice<double>& x, int64_t b, int64_t e,
                                      double rms) {
  k.update_pass(x, b, e, rms);
}
#undef HAMLET_LIFT_CLONES
void ports(const LiftKernel<float>& k, const Slice<float>& x, int64_t b, int64_t e, Scratch<float>& sc) {
  ports_float(k, x, b, e, sc);
}
void ports(const LiftKernel<double>& k, const Slice<double>& x, int64_t b, int64_t e, Scratch<double>& sc) {
  ports_double(k, x, b, e, sc);
}
void velocity(const LiftKernel<float>& k, const Slice<float>& x, int64_t b, int64_t e, const float* inv_rms,
              Scratch<float>& sc) {
  velocity_float(k, x, b, e, inv_rms, sc);
}
void velocity(const LiftKernel<double>& k, const Slice<double>& x, int64_t b, int64_t e, const double* inv_rms,
              Scratch<double>& sc) {
  velocity_double(k, x, b, e, inv_rms, sc);
}
void update(const LiftKernel<float>& k, const Slice<float>& x, int64_t b, int64_t e, float rms) {
  update_float(k, x, b, e, rms);
}
void update(const LiftKernel<double>& k, const Slice<double>& x, int64_t b, int64_t e, double rms) {
  update_double(k, x, b, e, rms);
}

// Coordinates per chunk of a slice: a multiple of kBlock, fixed, so that the per-chunk sums (added up in chunk order)
// and hence the results do not depend on the number of threads.
constexpr int64_t kChunk = kBlock * 256;

// One problem's slice through the three passes, its chunks spread over the intra-op threads.
template <typename T>
Sums run_slice(const LiftKernel<T>& kernel, const Slice<T>& x) {
  const int64_t k = kernel.k, chunks = chunk_count(x.n, kChunk);
  std::vector<Scratch<T>> scratch(static_cast<std::size_t>(chunks), Scratch<T>(k, kernel.w));
  const auto chunk_scratch = [&](int64_t c) -> Scratch<T>& { return scratch[static_cast<std::size_t>(c)]; };
  for_each_chunk(x.n, kChunk, [&](int64_t c, int64_t b, int64_t e) { ports(kernel, x, b, e, chunk_scratch(c)); });
  // x / √(mean x² + 1e-16) as a product with the reciprocal, per channel.
  std::vector<T> inv_rms(static_cast<std::size_t>(k + 2));
  for (int64_t ch = 0; ch < k + 2; ++ch) {
    double sum = 0;
    for (const auto& sc : scratch) sum += lane_sum(sc.sq, static_cast<std::size_t>(ch * kBlock));
    inv_rms[static_cast<std::size_t>(ch)] = T(1) / static_cast<T>(std::sqrt(sum / static_cast<double>(x.n) + 1e-16));
  }
  for_each_chunk(x.n, kChunk,
                 [&](int64_t c, int64_t b, int64_t e) { velocity(kernel, x, b, e, inv_rms.data(), chunk_scratch(c)); });
  Sums sums;
  double q_dot_sq = 0;
  for (const auto& sc : scratch) {
    q_dot_sq += lane_sum(sc.q_dot_sq);
    sums.h_before += lane_sum(sc.h_before);
    sums.h_after += lane_sum(sc.h_after);
    sums.dissipated += lane_sum(sc.dissipated);
    sums.supplied += lane_sum(sc.supplied);
  }
  const T rms = kernel.normalise ? static_cast<T>(std::sqrt(q_dot_sq / static_cast<double>(x.n) + 1e-16)) : T(1);
  for_each_chunk(x.n, kChunk, [&](int64_t, int64_t b, int64_t e) { update(kernel, x, b, e, rms); });
  return sums;
}

template <typename T>
std::vector<T> values_of(const at::Tensor& t) {
  const at::Tensor c = t.contiguous();
  return {c.data_ptr<T>(), c.data_ptr<T>() + c.numel()};
}

template <typename T>
LiftKernel<T> make_kernel(const PhnnLiftOptions& o, const TensorList& weights, int64_t step,
                          const at::TensorOptions& opts) {
  TensorList w;
  for (const auto& x : weights) w.push_back(x.detach().to(opts));
  LiftKernel<T> kernel;
  kernel.k = o.k;
  kernel.w = o.hidden;
  kernel.f = o.features();
  HAMLET_CHECK(w.size() == 6 && w[0].numel() == o.k && w[1].dim() == 2 && w[1].size(0) == o.hidden &&
                   w[1].size(1) == kernel.f && w[2].numel() == o.hidden && w[3].numel() == (o.k + 1) * o.hidden &&
                   w[4].numel() == o.k + 1 && w[5].numel() == 1,
               "phnn-lift kernel: the weights do not fit k = ", o.k, ", hidden = ", o.hidden);
  // ρ and β as the tensor path computes them (exp, then lift::ports' exp(−h ρ) with h = 1), so both round alike.
  const at::Tensor rho = w[0].exp();
  const at::Tensor beta = (-1.0 * rho).exp();
  kernel.rho = values_of<T>(rho);
  kernel.beta = values_of<T>(beta);
  kernel.one_minus_beta = values_of<T>(1.0 - beta);
  kernel.w0 = values_of<T>(w[1]);
  at::Tensor bias0 = w[2];
  if (o.time_features) {
    const at::Tensor time = mlp_lopt_time_features(step).to(opts);
    bias0 = bias0 + at::mv(w[1].narrow(1, o.k + 2, kMlpLoptTimeFeatures), time);
  }
  kernel.bias0 = values_of<T>(bias0);
  kernel.w2 = values_of<T>(w[3]);
  kernel.b2 = values_of<T>(w[4]);
  kernel.alpha = values_of<T>(w[5].exp())[0];
  kernel.beta_v = static_cast<T>(o.second_moment_decay);
  kernel.one_minus_beta_v = static_cast<T>(1.0 - o.second_moment_decay);
  kernel.eps = static_cast<T>(o.eps);
  kernel.speed = static_cast<T>(o.speed);
  kernel.speed_squared = o.speed * o.speed;
  kernel.inv_k = static_cast<T>(1.0 / static_cast<double>(o.k));
  kernel.out_mul = static_cast<T>(o.out_mul);
  kernel.weight_decay = static_cast<T>(o.weight_decay);
  kernel.constant_mass = o.mass == "constant";
  kernel.relativistic = o.kinetic_kind() == lift::Kinetic::kRelativistic;
  kernel.normalise = o.normalise_output;
  return kernel;
}

template <typename T>
optim::StepResult run(const PhnnLiftOptions& o, const TensorList& weights, const TensorList& params,
                      const TensorList& grads, const optim::OptimizerState& state, const at::TensorOptions& opts) {
  const LiftKernel<T> kernel = make_kernel<T>(o, weights, state.step, opts);
  const int64_t k = o.k, problems = params[0].size(0);
  std::vector<Sums> sums(static_cast<std::size_t>(problems));
  optim::StepResult result;
  result.state.step = state.step + 1;
  for (std::size_t i = 0; i < params.size(); ++i) {
    const int64_t b = params[i].size(0), numel = params[i].numel();
    HAMLET_CHECK(b == problems, "phnn-lift kernel: parameter ", i, " has ", b, " problems, parameter 0 has ",
                 problems);
    const at::Tensor theta = params[i].contiguous(), g = grads[i].to(opts).contiguous();
    const at::Tensor p = state.slots.at("p")[i].to(opts).contiguous(), v = state.slots.at("v")[i].to(opts).contiguous();
    HAMLET_CHECK(g.numel() == numel && p.numel() == numel * k && v.numel() == numel,
                 "phnn-lift kernel: the gradient or the state slots do not fit a parameter of shape ",
                 params[i].sizes());
    std::vector<int64_t> shape(params[i].sizes().begin(), params[i].sizes().end());
    at::Tensor theta_next = at::empty(shape, opts), v_next = at::empty(shape, opts);
    shape.push_back(k);
    at::Tensor p_next = at::empty(shape, opts);
    const int64_t n = numel / b;
    for (int64_t pb = 0; pb < b && n > 0; ++pb) {
      const Slice<T> x{theta.data_ptr<T>() + pb * n,      g.data_ptr<T>() + pb * n,
                       p.data_ptr<T>() + pb * n * k,      v.data_ptr<T>() + pb * n,
                       theta_next.data_ptr<T>() + pb * n, p_next.data_ptr<T>() + pb * n * k,
                       v_next.data_ptr<T>() + pb * n,     n};
      const Sums s = run_slice(kernel, x);
      Sums& total = sums[static_cast<std::size_t>(pb)];
      total.h_before += s.h_before;
      total.h_after += s.h_after;
      total.dissipated += s.dissipated;
      total.supplied += s.supplied;
    }
    result.params.push_back(theta_next);
    result.state.slots["v"].push_back(v_next);
    result.state.slots["p"].push_back(p_next);
  }
  const auto diagnostic = [&](double Sums::*field) {
    std::vector<double> values;
    for (const auto& s : sums) values.push_back(s.*field);
    return at::tensor(values, at::TensorOptions().dtype(at::kDouble)).to(opts);
  };
  result.diagnostics["H_before"] = diagnostic(&Sums::h_before);
  result.diagnostics["H_after"] = diagnostic(&Sums::h_after);
  result.diagnostics["dissipated_power"] = diagnostic(&Sums::dissipated);
  result.diagnostics["supplied_power"] = diagnostic(&Sums::supplied);
  return result;
}

}  // namespace

bool phnn_lift_fused_applies(const TensorList& params, const TensorList& grads, const optim::OptimizerState& state,
                             const TensorList& weights, const at::TensorOptions& opts) {
  if (!(opts.device().is_cpu() && (opts.dtype() == at::kFloat || opts.dtype() == at::kDouble))) return false;
  if (params.empty() || grads.size() != params.size()) return false;
  for (const auto& w : weights) {
    if (w.requires_grad()) return false;
  }
  for (const auto& [name, slot] : state.slots) {
    for (const auto& x : slot) {
      if (x.requires_grad()) return false;
    }
  }
  for (std::size_t i = 0; i < params.size(); ++i) {
    const at::Tensor &p = params[i], &g = grads[i];
    if (p.dim() < 1 || p.size(0) < 1 || p.scalar_type() != opts.dtype() || !p.device().is_cpu() ||
        !g.device().is_cpu() || p.requires_grad() || g.requires_grad())
      return false;
  }
  return true;
}

void check_phnn_lift_inputs(const TensorList& params, const TensorList& grads, const optim::OptimizerState& state) {
  HAMLET_CHECK(grads.size() == params.size(), "phnn-lift: ", grads.size(), " gradients for ", params.size(),
               " parameter tensors");
  for (const char* slot : {"p", "v"}) {
    const auto it = state.slots.find(slot);
    HAMLET_CHECK(it != state.slots.end() && it->second.size() == params.size(), "phnn-lift: state has no slot '",
                 slot, "' for every parameter tensor (call init() first)");
  }
}

optim::StepResult phnn_lift_update_fused(const PhnnLiftOptions& options, const TensorList& weights,
                                         const TensorList& params, const TensorList& grads,
                                         const optim::OptimizerState& state, const at::TensorOptions& opts) {
  check_phnn_lift_inputs(params, grads, state);
  HAMLET_CHECK(phnn_lift_fused_applies(params, grads, state, weights, opts),
               "phnn-lift: the fused kernel needs CPU float32/float64 parameters of the compute dtype with a problem "
               "dimension and no autograd");
  if (opts.dtype() == at::kDouble) return run<double>(options, weights, params, grads, state, opts);
  return run<float>(options, weights, params, grads, state, opts);
}

}  // namespace hamlet::learned
