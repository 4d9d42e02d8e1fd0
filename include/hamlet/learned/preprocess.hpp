#pragma once
// Gradient preprocessing P of Andrychowicz et al. 2016, Appendix A ("Learning to learn by gradient descent by
// gradient descent"), as used by AfoninAndrei/OPT-ML `src/meta_optimizer.py` (docs/methods.md §1.5), p = 10:
//
//   P(x) = ( ln(|x| + 1e−8) / p ,  sign x )   if |x| ≥ e^(−p)
//   P(x) = ( −1 ,  e^p · x )                  otherwise
//
// Column order (log feature, sign feature). The threshold comparison is inclusive: x = e^(−p) takes the log
// branch. The 1e−8 sits inside the logarithm.
#include <ATen/ATen.h>

namespace hamlet::learned {

// The L2L / OPT-ML value of p.
constexpr double kPreprocessP = 10.0;

// Returns P(x) with a trailing feature dimension: x [...] -> [..., 2], same dtype and device as x.
//
// differentiable = false: P reads values only, as in OPT-ML (`inp.data`): the result carries no autograd history
//   (the docs/methods.md §1.9 `state_grad = false` behaviour; it is why only 24 of 55 paper-PHNN weights train on
//   MNIST).
// differentiable = true: gradients pass with the §1.9 derivative: log branch d/dx = sign(x)/(p(|x| + 1e−8)),
//   sign feature 0, small branch (0, e^p). Twice differentiable where the branches are smooth.
at::Tensor preprocess(const at::Tensor& x, bool differentiable = false, double p = kPreprocessP);

}  // namespace hamlet::learned
