#pragma once
// The fused path of the elementwise hand-designed optimizers (private to src/optim): one pass over a parameter's
// coordinates that reads θ, g and the buffers and writes θ' and the buffers' next values, instead of the tensor
// rule's five to ten ATen operations that each allocate a full-size temporary and stream it through memory. The
// tensor rules stay the reference and the path autograd sees: fused_elementwise declines (returns false) whenever a
// tensor requires grad under grad mode, lives off the CPU, is not float32/float64 or differs in dtype or shape, and
// the caller then runs the tensor rule. Coordinates are cut into fixed chunks spread over torch's intra-op threads
// (core/parallel.hpp), so results do not depend on the thread count.
//
// A rule is a copyable object with `template <typename T> T operator()(T theta, T g, T* b) const` that replaces the
// S buffer values b[0..S) with their next values and returns θ'. Its arithmetic should follow the tensor rule's order
// so that float32 results agree to rounding (GCC may contract a·b + c into an FMA, hence "to rounding", not bits).
#include <ATen/ATen.h>

#include <array>
#include <cstdint>

#include "hamlet/core/parallel.hpp"
#include "hamlet/core/tensor.hpp"

namespace hamlet::optim::detail {

// Coordinates per chunk: 64 KiB of float32 per stream, small next to a core's L2 and large enough that a chunk's
// scheduling cost vanishes.
inline constexpr int64_t kFusedChunk = 1 << 14;

// Whether the fused loop may replace the tensor rule for θ, g and these buffers (see above).
bool fused_applies(const at::Tensor& param, const at::Tensor& grad, const TensorList& buffers);

// One chunk's coordinates [0, n) of the pointers given: a function of its own because GCC honours __restrict on
// parameters (not on locals inside a lambda), and without it the loop needs more alias checks than it will version.
// Cloned for AVX-512 and AVX2 (picked at load time): Adam's square root and two divisions per coordinate take
// longer than its memory traffic with 128-bit vectors. The clones compute the same operations in the same order;
// GCC contracts a·b + c into one FMA where the ISA has it, so they may differ in the last bit.
// (clang-14, the sanitized build's compiler, cannot multiversion templates: it compiles the one baseline version.)
#if defined(__clang__)
#define HAMLET_FUSED_CLONES
#else
#define HAMLET_FUSED_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#endif
template <int S, typename T, typename Rule>
HAMLET_FUSED_CLONES void fused_range(
    const Rule& rule, const T* __restrict theta, const T* __restrict g, const T* __restrict b0, const T* __restrict b1,
    T* __restrict out_theta, T* __restrict o0, T* __restrict o1, int64_t n) {
  if constexpr (S == 0) {
    for (int64_t i = 0; i < n; ++i) out_theta[i] = rule(theta[i], g[i], static_cast<T*>(nullptr));
  } else if constexpr (S == 1) {
    for (int64_t i = 0; i < n; ++i) {
      T b[1] = {b0[i]};
      out_theta[i] = rule(theta[i], g[i], b);
      o0[i] = b[0];
    }
  } else {
    for (int64_t i = 0; i < n; ++i) {
      T b[2] = {b0[i], b1[i]};
      out_theta[i] = rule(theta[i], g[i], b);
      o0[i] = b[0];
      o1[i] = b[1];
    }
  }
}

template <int S, typename T, typename Rule>
void fused_loop(const Rule& rule, const T* theta, const T* g, std::array<const T*, S> in, T* out_theta,
                std::array<T*, S> out, int64_t n) {
  static_assert(S <= 2, "fused_loop: rules with more than two buffers need a wider fused_range");
  for_each_chunk(n, kFusedChunk, [&](int64_t, int64_t begin, int64_t end) {
    const auto at = [begin](auto* base) { return base ? base + begin : base; };
    const T* b0 = S > 0 ? in[0] : nullptr;
    const T* b1 = S > 1 ? in[1] : nullptr;
    T* o0 = S > 0 ? out[0] : nullptr;
    T* o1 = S > 1 ? out[1] : nullptr;
    fused_range<S>(rule, theta + begin, g + begin, at(b0), at(b1), out_theta + begin, at(o0), at(o1), end - begin);
  });
}

// Runs `rule` over θ [B, ...] with gradient g and its S buffers: on success `next` holds θ', `buffers` hold the new
// buffers (fresh tensors: the inputs are not modified) and it returns true; false (nothing touched) where the fused
// path does not apply.
template <int S, typename Rule>
bool fused_elementwise(const Rule& rule, const at::Tensor& param, const at::Tensor& grad, TensorList& buffers,
                       at::Tensor& next) {
  if (static_cast<int>(buffers.size()) != S || !fused_applies(param, grad, buffers)) return false;
  const at::Tensor p = param.contiguous(), gc = grad.contiguous();
  std::array<at::Tensor, S> b_in, b_out;
  for (int k = 0; k < S; ++k) {
    b_in[k] = buffers[k].contiguous();
    b_out[k] = at::empty_like(b_in[k], at::MemoryFormat::Contiguous);
  }
  next = at::empty_like(p, at::MemoryFormat::Contiguous);
  AT_DISPATCH_FLOATING_TYPES(p.scalar_type(), "fused_elementwise", [&] {
    std::array<const scalar_t*, S> in{};
    std::array<scalar_t*, S> out{};
    for (int k = 0; k < S; ++k) {
      in[k] = b_in[k].template data_ptr<scalar_t>();
      out[k] = b_out[k].template data_ptr<scalar_t>();
    }
    fused_loop<S, scalar_t>(rule, p.data_ptr<scalar_t>(), gc.data_ptr<scalar_t>(), in, next.data_ptr<scalar_t>(), out,
                            p.numel());
  });
  for (int k = 0; k < S; ++k) buffers[k] = b_out[k];
  return true;
}

}  // namespace hamlet::optim::detail
