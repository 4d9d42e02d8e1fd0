#include "hamlet/learned/lstm_kernel.hpp"

#include <torch/csrc/autograd/custom_function.h>

#include "hamlet/core/error.hpp"
#include "kernel_math.hpp"

namespace hamlet::learned {
namespace {

using kernel::tanh_of;
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// One row of a cell after the activations: c' = f ⊙ c + i ⊙ g, h' = o ⊙ tanh(c'). The row's streams are separate
// restrict parameters: as pointers into one loop body they exceed GCC's alias checks and the loop stays scalar.
template <typename T>
HAMLET_KERNEL_INLINE inline void cell_row(int64_t n, const T* __restrict__ gi, const T* __restrict__ gf,
                                          const T* __restrict__ gg, const T* __restrict__ go,
                                          const T* __restrict__ cp, T* __restrict__ cn, T* __restrict__ hn) {
  for (int64_t j = 0; j < n; ++j) {
    const T c = gf[j] * cp[j] + gi[j] * gg[j];
    cn[j] = c;
    hn[j] = go[j] * tanh_of(c);
  }
}

// One row of a cell's backward: ā from the activations, c, c', h̄' and c̄' (header of lstm_kernel.hpp), and c̄.
template <typename T>
HAMLET_KERNEL_INLINE inline void cell_row_backward(int64_t n, const T* __restrict__ ai, const T* __restrict__ af,
                                                   const T* __restrict__ ag, const T* __restrict__ ao,
                                                   const T* __restrict__ cp, const T* __restrict__ cn,
                                                   const T* __restrict__ dh, const T* __restrict__ dc,
                                                   T* __restrict__ di, T* __restrict__ df, T* __restrict__ dg,
                                                   T* __restrict__ d_o, T* __restrict__ dcp) {
  for (int64_t j = 0; j < n; ++j) {
    const T i = ai[j], f = af[j], g = ag[j], o = ao[j];
    const T t = tanh_of(cn[j]);
    const T dc_total = dc[j] + dh[j] * o * (T(1) - t * t);
    di[j] = dc_total * g * i * (T(1) - i);
    df[j] = dc_total * cp[j] * f * (T(1) - f);
    dg[j] = dc_total * i * (T(1) - g * g);
    d_o[j] = dh[j] * t * o * (T(1) - o);
    dcp[j] = dc_total * f;
  }
}

// One cell's elementwise forward over rows stored row-major. Every inner loop runs over a row's H hidden units,
// which are contiguous in each of the four gate blocks, so the compiler vectorises it.
template <typename T>
struct CellForward {
  int64_t rows = 0, hidden = 0;
  T* gates = nullptr;         // [R, 4H]: pre-activations in, activations [i f g o] out
  const T* c_prev = nullptr;  // [R, H]
  T* c_next = nullptr;        // [R, H]
  T* h_next = nullptr;        // [R, H]
  T* h_copy = nullptr;        // optional second home of h': the first H columns of the next cell's [h' | h]
  int64_t copy_stride = 0;
  const T* head_w = nullptr;  // optional head: u[r] = head_w · h'[r] + head_b
  T head_b = 0;
  T* u = nullptr;

  // scale: 4H values, 1 for the σ gates and 2 for g, whose tanh is 2σ(2a) − 1: one loop over all 4H gates of a
  // row (contiguous, a multiple of the vector width for H = 20) instead of four loops of H.
  HAMLET_KERNEL_INLINE void run(const T* __restrict__ scale) const {
    const int64_t n = hidden;
    for (int64_t r = 0; r < rows; ++r) {
      T* __restrict__ a = gates + r * 4 * n;
      for (int64_t k = 0; k < 4 * n; ++k) {
        const T s = scale[k];
        a[k] = s / (T(1) + kernel::exp_of(-s * a[k])) - (s - T(1));
      }
      T* hn = h_next + r * n;
      cell_row(n, a, a + n, a + 2 * n, a + 3 * n, c_prev + r * n, c_next + r * n, hn);
      if (h_copy != nullptr) {
        T* __restrict__ dst = h_copy + r * copy_stride;
        for (int64_t j = 0; j < n; ++j) dst[j] = hn[j];
      }
      if (u != nullptr) {
        T sum = head_b;
        for (int64_t j = 0; j < n; ++j) sum += head_w[j] * hn[j];
        u[r] = sum;
      }
    }
  }
};

// One cell's elementwise backward: from the cotangent of h' (up to two strided sources and the head's ū w_head)
// and of c', the cotangent of the pre-activations ā [R, 4H] and of the carried c [R, H].
template <typename T>
struct CellBackward {
  int64_t rows = 0, hidden = 0;
  const T* act = nullptr;     // [R, 4H]: the activations [i f g o] of the forward pass
  const T* c_prev = nullptr;  // [R, H]
  const T* c_next = nullptr;  // [R, H]
  const T* dh_a = nullptr;    // h̄' sources, row strides below (either may be null)
  int64_t dh_a_stride = 0;
  const T* dh_b = nullptr;
  int64_t dh_b_stride = 0;
  const T* du = nullptr;      // [R] (null: no head)
  const T* head_w = nullptr;  // [H]
  const T* dc = nullptr;      // c̄' [R, H] (may be null)
  T* da = nullptr;            // [R, 4H]
  T* dc_prev = nullptr;       // [R, H]

  HAMLET_KERNEL_INLINE void run(T* __restrict__ dh, T* __restrict__ dcr) const {  // scratch of H values each
    const int64_t n = hidden;
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t j = 0; j < n; ++j) dh[j] = 0;
      for (int64_t j = 0; j < n; ++j) dcr[j] = dc != nullptr ? dc[r * n + j] : T(0);
      if (dh_a != nullptr) {
        for (int64_t j = 0; j < n; ++j) dh[j] += dh_a[r * dh_a_stride + j];
      }
      if (dh_b != nullptr) {
        for (int64_t j = 0; j < n; ++j) dh[j] += dh_b[r * dh_b_stride + j];
      }
      if (du != nullptr) {
        for (int64_t j = 0; j < n; ++j) dh[j] += du[r] * head_w[j];
      }
      const T* a = act + r * 4 * n;
      T* d = da + r * 4 * n;
      cell_row_backward(n, a, a + n, a + 2 * n, a + 3 * n, c_prev + r * n, c_next + r * n, dh, dcr, d, d + n,
                        d + 2 * n, d + 3 * n, dc_prev + r * n);
    }
  }
};

// float32 loops in three ISA variants (GCC function multiversioning picks one at load time).
__attribute__((target_clones("avx512f", "avx2", "default"))) void run_forward_float(const CellForward<float>& k,
                                                                                    const float* scale) {
  k.run(scale);
}
__attribute__((target_clones("avx512f", "avx2", "default"))) void run_backward_float(const CellBackward<float>& k,
                                                                                     float* dh, float* dc) {
  k.run(dh, dc);
}
// The per-gate scales of CellForward::run for H hidden units: [1]·H, [1]·H, [2]·H, [1]·H.
template <typename T>
std::vector<T> gate_scales(int64_t n) {
  std::vector<T> scale(static_cast<std::size_t>(4 * n), T(1));
  for (int64_t j = 2 * n; j < 3 * n; ++j) scale[static_cast<std::size_t>(j)] = T(2);
  return scale;
}
void run_forward(const CellForward<float>& k) { run_forward_float(k, gate_scales<float>(k.hidden).data()); }
void run_forward(const CellForward<double>& k) { k.run(gate_scales<double>(k.hidden).data()); }
void run_backward(const CellBackward<float>& k, float* dh, float* dc) { run_backward_float(k, dh, dc); }
void run_backward(const CellBackward<double>& k, double* dh, double* dc) { k.run(dh, dc); }

// Tensors the backward pass needs, per layer: the cell input [x_l | h_l], the activations, c_l and c_l'.
struct Saved {
  at::Tensor cat1, act1, cat2, act2;
};

// Weights of one cell side by side, [4H, in + H], and the summed biases [4H].
at::Tensor cell_weight(const std::vector<at::Tensor>& w, std::size_t first) { return at::cat({w[first], w[first + 1]}, 1); }

template <typename T>
LstmStepRows forward_rows(const at::Tensor& x, const at::Tensor& h1, const at::Tensor& c1, const at::Tensor& h2,
                          const at::Tensor& c2, const std::vector<at::Tensor>& w, Saved* saved) {
  const int64_t rows = x.size(0), n = h1.size(1);
  const auto opts = x.options();
  LstmStepRows out;
  const at::Tensor cat1 = at::cat({x, h1}, 1);
  at::Tensor act1 = at::addmm(w[2] + w[3], cat1, cell_weight(w, 0).t());
  at::Tensor cat2 = at::empty({rows, 2 * n}, opts);
  cat2.narrow(1, n, n).copy_(h2);
  out.c1 = at::empty({rows, n}, opts);
  out.h1 = at::empty({rows, n}, opts);
  CellForward<T> k1;
  k1.rows = rows;
  k1.hidden = n;
  k1.gates = act1.data_ptr<T>();
  k1.c_prev = c1.data_ptr<T>();
  k1.c_next = out.c1.data_ptr<T>();
  k1.h_next = out.h1.data_ptr<T>();
  k1.h_copy = cat2.data_ptr<T>();
  k1.copy_stride = 2 * n;
  run_forward(k1);

  at::Tensor act2 = at::addmm(w[6] + w[7], cat2, cell_weight(w, 4).t());
  out.c2 = at::empty({rows, n}, opts);
  out.h2 = at::empty({rows, n}, opts);
  out.u = at::empty({rows}, opts);
  CellForward<T> k2;
  k2.rows = rows;
  k2.hidden = n;
  k2.gates = act2.data_ptr<T>();
  k2.c_prev = c2.data_ptr<T>();
  k2.c_next = out.c2.data_ptr<T>();
  k2.h_next = out.h2.data_ptr<T>();
  k2.head_w = w[8].data_ptr<T>();
  k2.head_b = w[9].item<T>();
  k2.u = out.u.data_ptr<T>();
  run_forward(k2);
  if (saved != nullptr) *saved = Saved{cat1, act1, cat2, act2};
  return out;
}

// The cotangents of the pre-activations and of the carried c of one cell.
template <typename T>
std::pair<at::Tensor, at::Tensor> backward_cell(CellBackward<T> k, const at::Tensor& act, const at::Tensor& c_prev,
                                                const at::Tensor& c_next, const at::Tensor& dc) {
  const int64_t rows = act.size(0), n = act.size(1) / 4;
  at::Tensor da = at::empty_like(act), dc_prev = at::empty_like(c_prev);
  k.rows = rows;
  k.hidden = n;
  k.act = act.data_ptr<T>();
  k.c_prev = c_prev.data_ptr<T>();
  k.c_next = c_next.data_ptr<T>();
  k.dc = dc.defined() ? dc.data_ptr<T>() : nullptr;
  k.da = da.data_ptr<T>();
  k.dc_prev = dc_prev.data_ptr<T>();
  std::vector<T> scratch(static_cast<std::size_t>(2 * n));
  run_backward(k, scratch.data(), scratch.data() + n);
  return {da, dc_prev};
}

at::Tensor contiguous_or_undefined(const at::Tensor& t) { return t.defined() ? t.contiguous() : t; }

template <typename T>
variable_list backward_rows(const variable_list& saved, const variable_list& grads, int64_t d) {
  // saved: cat1, act1, c1, c1', cat2, act2, c2, c2', h2', then the 10 weights.
  const at::Tensor &cat1 = saved[0], &act1 = saved[1], &c1 = saved[2], &c1n = saved[3];
  const at::Tensor &cat2 = saved[4], &act2 = saved[5], &c2 = saved[6], &c2n = saved[7], &h2n = saved[8];
  const std::vector<at::Tensor> w(saved.begin() + 9, saved.end());
  const int64_t n = c1.size(1);
  const at::Tensor du = contiguous_or_undefined(grads[0]), dh1 = contiguous_or_undefined(grads[1]);
  const at::Tensor dc1 = contiguous_or_undefined(grads[2]), dh2 = contiguous_or_undefined(grads[3]);
  const at::Tensor dc2 = contiguous_or_undefined(grads[4]);

  CellBackward<T> k2;
  if (dh2.defined()) {
    k2.dh_a = dh2.data_ptr<T>();
    k2.dh_a_stride = n;
  }
  if (du.defined()) {
    k2.du = du.data_ptr<T>();
    k2.head_w = w[8].data_ptr<T>();
  }
  const auto [da2, dc2_prev] = backward_cell<T>(k2, act2, c2, c2n, dc2);
  const at::Tensor dcat2 = da2.mm(cell_weight(w, 4));  // [R, 2H]: h̄1' from cell 2, then h̄2
  const at::Tensor dw2 = da2.t().mm(cat2);             // [4H, 2H]
  const at::Tensor db2 = da2.sum(0);

  CellBackward<T> k1;
  k1.dh_a = dcat2.data_ptr<T>();
  k1.dh_a_stride = 2 * n;
  if (dh1.defined()) {
    k1.dh_b = dh1.data_ptr<T>();
    k1.dh_b_stride = n;
  }
  const auto [da1, dc1_prev] = backward_cell<T>(k1, act1, c1, c1n, dc1);
  const at::Tensor dcat1 = da1.mm(cell_weight(w, 0));  // [R, d + H]: x̄, then h̄1
  const at::Tensor dw1 = da1.t().mm(cat1);             // [4H, d + H]
  const at::Tensor db1 = da1.sum(0);

  at::Tensor dhead_w, dhead_b;
  if (du.defined()) {
    dhead_w = du.unsqueeze(0).mm(h2n);  // [1, H]
    dhead_b = du.sum().reshape({1});
  }
  return {dcat1.narrow(1, 0, d), dcat1.narrow(1, d, n), dc1_prev, dcat2.narrow(1, n, n), dc2_prev,
          dw1.narrow(1, 0, d), dw1.narrow(1, d, n), db1, db1, dw2.narrow(1, 0, n), dw2.narrow(1, n, n), db2, db2,
          dhead_w, dhead_b};
}

LstmStepRows dispatch_forward(const at::Tensor& x, const at::Tensor& h1, const at::Tensor& c1, const at::Tensor& h2,
                              const at::Tensor& c2, const std::vector<at::Tensor>& w, Saved* saved) {
  return x.scalar_type() == at::kFloat ? forward_rows<float>(x, h1, c1, h2, c2, w, saved)
                                       : forward_rows<double>(x, h1, c1, h2, c2, w, saved);
}

// The whole step as one graph node; its inputs are x, h1, c1, h2, c2 and the weights, in this order.
struct LstmStepNode : torch::autograd::Function<LstmStepNode> {
  static variable_list forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& h1, const at::Tensor& c1,
                               const at::Tensor& h2, const at::Tensor& c2, at::TensorList weights) {
    const std::vector<at::Tensor> w = weights.vec();
    Saved s;
    const LstmStepRows out = dispatch_forward(x, h1, c1, h2, c2, w, &s);
    variable_list to_save = {s.cat1, s.act1, c1, out.c1, s.cat2, s.act2, c2, out.c2, out.h2};
    to_save.insert(to_save.end(), w.begin(), w.end());
    ctx->save_for_backward(to_save);
    ctx->saved_data["d"] = x.size(1);
    ctx->set_materialize_grads(false);
    return {out.u, out.h1, out.c1, out.h2, out.c2};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const variable_list saved = ctx->get_saved_variables();
    const int64_t d = ctx->saved_data["d"].toInt();
    return saved[0].scalar_type() == at::kFloat ? backward_rows<float>(saved, grads, d)
                                                : backward_rows<double>(saved, grads, d);
  }
};

}  // namespace

bool lstm_fused_applies(const at::Tensor& x, const std::vector<at::Tensor>& weights) {
  const auto dtype = x.scalar_type();
  if (!x.device().is_cpu() || (dtype != at::kFloat && dtype != at::kDouble) || weights.size() != 10) return false;
  for (const auto& w : weights) {
    if (!w.device().is_cpu() || w.scalar_type() != dtype) return false;
  }
  return true;
}

LstmStepRows lstm_fused_step(const at::Tensor& x, const at::Tensor& h1, const at::Tensor& c1, const at::Tensor& h2,
                             const at::Tensor& c2, const std::vector<at::Tensor>& weights) {
  HAMLET_CHECK(lstm_fused_applies(x, weights),
               "lstm kernel: needs CPU float32/float64 rows and the 10 weights in the same dtype, got x ",
               x.scalar_type(), " on ", x.device(), " and ", weights.size(), " weights");
  HAMLET_CHECK(x.dim() == 2, "lstm kernel: x must be [R, d], got ", x.sizes());
  const int64_t rows = x.size(0), d = x.size(1), n = h1.dim() == 2 ? h1.size(1) : 0;
  for (const at::Tensor* s : {&h1, &c1, &h2, &c2}) {
    HAMLET_CHECK(s->dim() == 2 && s->size(0) == rows && s->size(1) == n,
                 "lstm kernel: every state must be [R, H] = [", rows, ", ", n, "], got ", s->sizes());
  }
  const std::vector<std::vector<int64_t>> shapes = {{4 * n, d}, {4 * n, n}, {4 * n}, {4 * n}, {4 * n, n},
                                                    {4 * n, n}, {4 * n},    {4 * n}, {1, n},  {1}};
  for (std::size_t i = 0; i < shapes.size(); ++i) {
    HAMLET_CHECK(weights[i].sizes() == at::IntArrayRef(shapes[i]), "lstm kernel: weight ", i, " must be ",
                 at::IntArrayRef(shapes[i]), ", got ", weights[i].sizes());
  }
  std::vector<at::Tensor> w;
  for (const auto& t : weights) w.push_back(t.contiguous());
  const at::Tensor xc = x.contiguous(), h1c = h1.contiguous(), c1c = c1.contiguous(), h2c = h2.contiguous(),
                   c2c = c2.contiguous();
  bool differentiable = false;
  if (at::GradMode::is_enabled()) {
    for (const at::Tensor* t : {&xc, &h1c, &c1c, &h2c, &c2c}) differentiable = differentiable || t->requires_grad();
    for (const auto& t : w) differentiable = differentiable || t.requires_grad();
  }
  if (!differentiable) return dispatch_forward(xc, h1c, c1c, h2c, c2c, w, nullptr);
  const variable_list out = LstmStepNode::apply(xc, h1c, c1c, h2c, c2c, at::TensorList(w));
  return LstmStepRows{out[0], out[1], out[2], out[3], out[4]};
}

}  // namespace hamlet::learned
