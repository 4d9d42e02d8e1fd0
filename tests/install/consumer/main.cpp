// Uses the installed hamlet: an optimizer from the registry on a quadratic, and the MNIST digits found through the
// data root compiled into the installed library. Exits non-zero when either does not work.
#include <cstdio>

#include "hamlet/data/dataset.hpp"
#include "hamlet/optim/registry.hpp"

int main() {
  const auto adam = hamlet::optim::make_optimizer("adam", {{"lr", "0.1"}});
  // F(θ) = ‖θ − 1‖² for one problem of 3 coordinates, from θ = 0.
  at::Tensor theta = at::zeros({1, 3}, at::kDouble);
  hamlet::optim::OptimizerState state = adam->init({theta});
  for (int t = 0; t < 200; ++t) {
    const at::Tensor grad = 2.0 * (theta - 1.0);
    auto result = adam->update({theta}, {grad}, ((theta - 1.0) * (theta - 1.0)).sum(1), state);
    theta = result.params[0];
    state = std::move(result.state);
  }
  const double loss = ((theta - 1.0) * (theta - 1.0)).sum().item<double>();
  const auto mnist = hamlet::data::load_dataset("mnist");
  std::printf("adam on a quadratic: loss %.3g after 200 steps; mnist: %lld images from %s (%s)\n", loss,
              static_cast<long long>(mnist.size()), mnist.source.c_str(), hamlet::data::data_root_source().c_str());
  return loss < 1e-3 && mnist.size() > 0 ? 0 : 1;
}
