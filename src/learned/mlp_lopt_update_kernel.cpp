#include "hamlet/learned/mlp_lopt_update_kernel.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "hamlet/core/error.hpp"
#include "hamlet/core/parallel.hpp"
#include "hamlet/learned/mlp_lopt_kernel.hpp"
#include "kernel_math.hpp"
#include "lopt_feature_passes.hpp"

namespace hamlet::learned {
namespace {

using lopt::Job;
using lopt::kBlock;
using lopt::kF;
using lopt::kLocal;
using lopt::kLocalCount;
using lopt::Layer0;
using lopt::rsqrt;

// What a step shares over tensors: the decays, the MLP past layer 0, the output scales.
template <typename T>
struct Step {
  lopt::Decays<T> decays;
  std::vector<int64_t> width;          // outputs of each linear layer (width[0] = layer 0's, the last = 2)
  std::vector<std::vector<T>> w, b;    // layers 1.. as [in][out] and [out]; w[0], b[0] unused
  std::vector<T> w0;                   // layer 0's rows for the 28 features [28][width[0]]
  std::vector<T> b0;                   // its bias with the time features folded in [width[0]]
  T exp_mult = 0, scale = 0;           // λ_e; out_mul · λ_s
  int64_t max_width = 0;
};

HAMLET_KERNEL_INLINE inline float exp_step(float x) { return kernel::exp_vectorisable(x); }
HAMLET_KERNEL_INLINE inline double exp_step(double x) { return std::exp(x); }

// The default network (hidden_layers = 2) with its width W known at compile time: its weights for a factored slice,
// layer 0's rows of the 16 per-coordinate channels already divided by their RMS.
constexpr int kFixedWidth = 4;
template <typename T, int W>
struct FixedNet {
  T w0[kLocalCount][W], w1[W][W], b1[W], w2[W][2], b2[2];
};

// Features, MLP and θ' of a factored block in one loop across its coordinates, everything of a coordinate in
// registers: the per-channel loops of the general path store and reload the hidden units once per input channel,
// which bounds them by the stores. Same arithmetic in the same order as the general path. `scale` [3][kBlock] holds
// F_k, `e` [W][kBlock] layer 0's bias plus the broadcast channels' share.
template <typename T, int W>
HAMLET_KERNEL_INLINE inline void fixed_block(const FixedNet<T, W>& net, T em, T sc, const T* __restrict__ g,
                                             const T* __restrict__ p, const T* __restrict__ mn,
                                             const T* __restrict__ vn, const T* __restrict__ scale,
                                             const T* __restrict__ e, int64_t n, T* __restrict__ theta_next) {
  for (int64_t r = 0; r < n; ++r) {
    const T gi = g[r], pi = p[r], vv = vn[r], rs = rsqrt(vv + T(1e-6));
    const T m0 = mn[3 * r], m1 = mn[3 * r + 1], m2 = mn[3 * r + 2];
    const T f0 = scale[r], f1 = scale[kBlock + r], f2 = scale[2 * kBlock + r];
    const T x[kLocalCount] = {gi,     pi,     m0,      m1,      m2,      vv,      m0 * rs, m1 * rs,
                              m2 * rs, rs,    gi * f0, gi * f1, gi * f2, m0 * f0, m1 * f1, m2 * f2};
    T h[W];
#pragma GCC unroll 16
    for (int u = 0; u < W; ++u) h[u] = e[u * kBlock + r];
#pragma GCC unroll 16
    for (int c = 0; c < kLocalCount; ++c) {
#pragma GCC unroll 16
      for (int u = 0; u < W; ++u) h[u] += net.w0[c][u] * x[c];
    }
    T h1[W];
#pragma GCC unroll 16
    for (int u = 0; u < W; ++u) h1[u] = net.b1[u];
#pragma GCC unroll 16
    for (int j = 0; j < W; ++j) {
      const T a = h[j] < T(0) ? T(0) : h[j];
#pragma GCC unroll 16
      for (int u = 0; u < W; ++u) h1[u] += net.w1[j][u] * a;
    }
    T d = net.b2[0], mu = net.b2[1];
#pragma GCC unroll 16
    for (int j = 0; j < W; ++j) {
      const T a = h1[j] < T(0) ? T(0) : h1[j];
      d += net.w2[j][0] * a;
      mu += net.w2[j][1] * a;
    }
    theta_next[r] = pi - d * exp_step(em * mu) * sc;
  }
}

// Pass 3 over [begin, end): features, MLP and θ' per block.
template <typename T>
HAMLET_KERNEL_INLINE inline void pass3(const Step<T>& s, const Job<T>& x, const Layer0<T>& l0, int64_t begin,
                                       int64_t end) {
  const int64_t w0 = s.width[0], wmax = s.max_width;
  const bool fixed = x.factored && s.width.size() == 3 && w0 == kFixedWidth && s.width[1] == kFixedWidth;
  FixedNet<T, kFixedWidth> net{};
  if (fixed) {
    for (int c = 0; c < kLocalCount; ++c) {
      for (int u = 0; u < kFixedWidth; ++u) net.w0[c][u] = l0.w[static_cast<std::size_t>(kLocal[c] * w0 + u)];
    }
    for (int j = 0; j < kFixedWidth; ++j) {
      net.b1[j] = s.b[1][static_cast<std::size_t>(j)];
      for (int u = 0; u < kFixedWidth; ++u) net.w1[j][u] = s.w[1][static_cast<std::size_t>(j * kFixedWidth + u)];
      for (int u = 0; u < 2; ++u) net.w2[j][u] = s.w[2][static_cast<std::size_t>(j * 2 + u)];
    }
    net.b2[0] = s.b[2][0];
    net.b2[1] = s.b[2][1];
  }
  alignas(64) T feat[kF * kBlock];
  alignas(64) T scale[3 * kBlock];
  std::vector<T> hidden(static_cast<std::size_t>(2 * wmax * kBlock), T(0));
  T* ha = hidden.data();
  T* hb = ha + wmax * kBlock;
  for (int64_t first = begin; first < end; first += kBlock) {
    const int64_t n = std::min(kBlock, end - first);
    // Layer 0 starts from its bias and, for a factored slice, the broadcast channels' share.
    lopt::layer0_start<kBlock>(x, l0, first, n, scale, ha);
    if (fixed) {
      fixed_block(net, s.exp_mult, s.scale, x.g + first, x.p + first, x.m_next + 3 * first, x.v_next + first, scale,
                  ha, n, x.p_next + first);
      continue;
    }
    lopt::layer0_features<kBlock>(x, l0, first, n, feat, scale, ha);
    // Layers 1..: ReLU of the previous layer, then the affine map.
    T* in = ha;
    T* out = hb;
    for (std::size_t l = 1; l < s.width.size(); ++l) {
      const int64_t n_in = s.width[l - 1], n_out = s.width[l];
      for (int64_t j = 0; j < n_in; ++j) {
        T* __restrict__ h = in + j * kBlock;
        for (int64_t r = 0; r < n; ++r) h[r] = h[r] < T(0) ? T(0) : h[r];
      }
      const std::vector<T>& w = s.w[l];
      for (int64_t u = 0; u < n_out; ++u) {
        T* __restrict__ o = out + u * kBlock;
        const T b = s.b[l][static_cast<std::size_t>(u)];
        for (int64_t r = 0; r < n; ++r) o[r] = b;
        for (int64_t j = 0; j < n_in; ++j) {
          const T wj = w[static_cast<std::size_t>(j * n_out + u)];
          const T* __restrict__ h = in + j * kBlock;
          for (int64_t r = 0; r < n; ++r) o[r] += wj * h[r];
        }
      }
      std::swap(in, out);
    }
    // θ' = θ − d · exp(λ_e μ) · (λ_s out_mul), as the tensor path associates it.
    const T* __restrict__ d = in;
    const T* __restrict__ mu = in + kBlock;
    T* __restrict__ theta_next = x.p_next + first;
    const T* __restrict__ p = x.p + first;
    const T em = s.exp_mult, sc = s.scale;
    for (int64_t r = 0; r < n; ++r) theta_next[r] = p[r] - d[r] * exp_step(em * mu[r]) * sc;
  }
}

// The passes in three ISA variants (GCC function multiversioning picks one at load time). The clones evaluate the
// same expressions in the same order (no reassociation across lanes), but GCC contracts a·b + c into a fused
// multiply-add where the target has one (its default -ffp-contract=fast outside ISO C; of these clones only the
// AVX-512 one, measured in the object code), so an AVX-512 machine rounds differently from an AVX2 or SSE2 one.
// On one machine the results are the same bits for every thread count.
#define HAMLET_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
HAMLET_CLONES void pass3_float(const Step<float>& s, const Job<float>& x, const Layer0<float>& l0, int64_t b,
                               int64_t e) {
  pass3(s, x, l0, b, e);
}
HAMLET_CLONES void pass3_double(const Step<double>& s, const Job<double>& x, const Layer0<double>& l0, int64_t b,
                                int64_t e) {
  pass3(s, x, l0, b, e);
}
#undef HAMLET_CLONES
void pass3_of(const Step<float>& s, const Job<float>& x, const Layer0<float>& l0, int64_t b, int64_t e) {
  pass3_float(s, x, l0, b, e);
}
void pass3_of(const Step<double>& s, const Job<double>& x, const Layer0<double>& l0, int64_t b, int64_t e) {
  pass3_double(s, x, l0, b, e);
}

template <typename T>
std::vector<T> values_of(const at::Tensor& t) {
  const at::Tensor c = t.detach().contiguous();
  return {c.data_ptr<T>(), c.data_ptr<T>() + c.numel()};
}

template <typename T>
Step<T> make_step(const MlpLoptOptions& o, const TensorList& weights, const MlpLoptDecays& decays, int64_t t,
                  const at::TensorOptions& opts) {
  const std::size_t layers = static_cast<std::size_t>(o.hidden_layers) + 1;
  HAMLET_CHECK(weights.size() == 2 * layers + 3 && weights[0].dim() == 2 &&
                   weights[0].size(0) == kMlpLoptFeatures + kMlpLoptTimeFeatures,
               "mlp-lopt kernel: the weights do not fit hidden_layers = ", o.hidden_layers);
  Step<T> s;
  s.decays = lopt::decays_of<T>(decays);
  s.w.resize(layers);
  s.b.resize(layers);
  for (std::size_t l = 0; l < layers; ++l) {
    const at::Tensor& w = weights[2 * l];
    HAMLET_CHECK(w.dim() == 2 && weights[2 * l + 1].numel() == w.size(1) &&
                     (l == 0 || w.size(0) == s.width.back()) && (l + 1 < layers || w.size(1) == 2),
                 "mlp-lopt kernel: layer ", l, " has weights of shape ", w.sizes());
    s.width.push_back(w.size(1));
    s.max_width = std::max(s.max_width, w.size(1));
    if (l > 0) {
      s.w[l] = values_of<T>(w);
      s.b[l] = values_of<T>(weights[2 * l + 1]);
    }
  }
  // The time features are the same for every coordinate: their share of layer 0 is a bias (as the tensor path).
  const at::Tensor time = mlp_lopt_time_features(t).to(opts);
  s.b0 = values_of<T>(weights[1] + at::matmul(time, weights[0].narrow(0, kMlpLoptFeatures, kMlpLoptTimeFeatures)));
  s.w0 = values_of<T>(weights[0].narrow(0, 0, kMlpLoptFeatures));
  s.exp_mult = static_cast<T>(o.exp_mult);
  s.scale = static_cast<T>(o.step_mult * o.out_mul);
  return s;
}

// One problem's slice of one tensor: the feature passes, then pass 3.
template <typename T>
void run_job(const Step<T>& s, const Job<T>& x) {
  const Layer0<T> l0 = lopt::prepare_layer0(s.decays, x, s.w0, s.b0, s.width[0]);
  for_each_chunk(x.n, lopt::chunk_size(x.n), [&](int64_t, int64_t begin, int64_t end) {
    pass3_of(s, x, l0, begin, end);
  });
}

template <typename T>
optim::StepResult run(const MlpLoptOptions& o, const TensorList& weights, const MlpLoptDecays& decays,
                      const TensorList& params, const TensorList& grads, const optim::OptimizerState& state,
                      const at::TensorOptions& opts) {
  const Step<T> step = make_step<T>(o, weights, decays, state.step, opts);
  optim::StepResult result;
  result.state.step = state.step + 1;
  lopt::for_each_job<T>(params, grads, state, opts, result.params, result.state,
                        [&](std::size_t, int64_t, const Job<T>& x) { run_job(step, x); });
  return result;
}

}  // namespace

bool mlp_lopt_update_fused_applies(const TensorList& params, const TensorList& grads, const TensorList& weights,
                                   const MlpLoptDecays& decays, const optim::OptimizerState& state,
                                   const at::TensorOptions& opts) {
  if (params.empty() || grads.size() != params.size()) return false;
  if (!mlp_lopt_fused_applies(params, grads, decays, opts)) return false;
  for (const auto& w : weights) {
    if (w.requires_grad()) return false;
  }
  for (const auto& [name, slot] : state.slots) {
    for (const auto& x : slot) {
      if (x.requires_grad()) return false;
    }
  }
  for (const auto& p : params) {
    if (p.dim() < 1 || p.scalar_type() != opts.dtype()) return false;
  }
  return true;
}

optim::StepResult mlp_lopt_update_fused(const MlpLoptOptions& options, const TensorList& weights,
                                        const MlpLoptDecays& decays, const TensorList& params, const TensorList& grads,
                                        const optim::OptimizerState& state, const at::TensorOptions& opts) {
  for (const char* slot : {"m", "v", "fac"}) {
    const auto it = state.slots.find(slot);
    HAMLET_CHECK(it != state.slots.end() && it->second.size() == params.size(), "mlp-lopt: state has no slot '",
                 slot, "' for every parameter tensor (call init() first)");
  }
  HAMLET_CHECK(mlp_lopt_update_fused_applies(params, grads, weights, decays, state, opts),
               "mlp-lopt: the fused update needs CPU float32/float64 parameters of the compute dtype, per-problem rank "
               "<= 2 and no autograd");
  if (opts.dtype() == at::kDouble) return run<double>(options, weights, decays, params, grads, state, opts);
  return run<float>(options, weights, decays, params, grads, state, opts);
}

}  // namespace hamlet::learned