#pragma once
// hamlet::interop::TorchOptimizer: any hamlet optimizer (hand-designed or learned, by registry name, or a learned
// optimizer's weight file) as a torch::optim::Optimizer, for training an nn::Module in your own LibTorch code.
//
//   auto opt = hamlet::interop::TorchOptimizer(model->parameters(),
//                  hamlet::interop::TorchOptimizerOptions::from_weights("phnn_weights.h5"));
//   for (...) { opt.zero_grad(); auto loss = loss_fn(model->forward(x), y); loss.backward(); opt.step(); }
//   torch::save(opt, "opt.pt");  ...  torch::load(opt, "opt.pt");   // resumes bitwise
//
// It plays the role PyLO's torch.optim drop-in plays for PyTorch. hamlet's update interface
// (hamlet/optim/optimizer.hpp) works on [B, ...] tensors of B problems; the adapter treats every param group as
// one problem (B = 1): it adds the leading problem dimension, calls update() under NoGradGuard, and copies the new
// values into the parameters in place. Consequences a user should know:
// - A param group is one hamlet problem. Reductions that hamlet takes "per problem" span the group: the global
//   gradient and momentum norms of ECDSep, phnn-paper's per-tensor norm is per parameter tensor as usual. With one
//   group (the default) the adapter reproduces `hamlet evaluate` on the same problem exactly.
// - Each group has its own hamlet optimizer (built from the group's TorchOptimizerOptions) and its own state.
// - Gradients: a group none of whose parameters has a gradient (undefined grad()) is skipped, as the torch::optim
//   optimizers skip such parameters. A group where only some parameters have a gradient is an error
//   naming them: hamlet's update couples a group's tensors, so leaving some out would change the algorithm.
// - Non-finite gradients (NaN / ±inf) are an error naming the group and parameter, raised before anything is
//   changed (check_finite = true, the default; one reduction per step). With check_finite = false they flow into
//   the update as in torch::optim.
// - step(closure) evaluates the closure with grad mode on and returns its loss; optimizers that read the loss
//   (ECDSep, needs_loss()) require a closure returning a one-element loss.
// - get_lr()/set_lr() (used by LibTorch's LR schedulers) read and write the option hamlet's tuner scans: "lr" for
//   hand-designed optimizers, "out_mul" for learned ones; the group's optimizer is rebuilt on the next step with
//   its state kept.
// - save()/load() (torch::save / torch::load) store, per group, the registry name, the hamlet options and the
//   whole OptimizerState (step counter, slots, per-problem scalars). A learned optimizer's weights are not copied
//   into the archive: its options name the weight file, which must still be there at load time. Loading into an
//   optimizer with another number of groups or parameters, parameters of other shapes, or groups built for
//   another optimizer (an archive of "adam" into a TorchOptimizer of "sgd") is an error naming both.
// - save_to_file()/load_from_file() do what torch::save / torch::load do with a path, but turn torch's own errors
//   (a missing file, a file that is not a torch archive) into hamlet::Error naming the file.
// Errors are hamlet::Error (a std::runtime_error) with a message naming what was wrong.
#include <torch/optim/optimizer.h>

#include <map>
#include <string>
#include <vector>

#include "hamlet/core/options.hpp"
#include "hamlet/optim/optimizer.hpp"

namespace hamlet::interop {

struct TorchOptimizerOptions : public torch::optim::OptimizerCloneableOptions<TorchOptimizerOptions> {
  // `name`: a hand-designed optimizer ("sgd", "adam", ..., `hamlet list`) or a learned one ("phnn-paper", "phnn",
  // "lstm"); `options`: its hamlet options as on the command line without the prefix, e.g. {{"lr", "0.1"}} or
  // {{"weights", "phnn.h5"}, {"out_mul", "0.5"}}. Invalid names or options throw when the optimizer is built.
  explicit TorchOptimizerOptions(std::string name = "sgd", OptionMap options = {});
  // The learned optimizer stored in a weight file (its registry name is read from the file), with `overrides`
  // applied to the options recorded there.
  static TorchOptimizerOptions from_weights(const std::string& path, OptionMap overrides = {});

  TORCH_ARG(std::string, name);
  TORCH_ARG(OptionMap, options);
  TORCH_ARG(bool, check_finite) = true;

  double get_lr() const override;
  void set_lr(double lr) override;
};

class TorchOptimizer : public torch::optim::Optimizer {
 public:
  TorchOptimizer(std::vector<torch::optim::OptimizerParamGroup> param_groups, TorchOptimizerOptions defaults);
  TorchOptimizer(std::vector<at::Tensor> params, TorchOptimizerOptions defaults);

  at::Tensor step(LossClosure closure = nullptr) override;
  void save(torch::serialize::OutputArchive& archive) const override;
  void load(torch::serialize::InputArchive& archive) override;
  void save_to_file(const std::string& path) const;
  void load_from_file(const std::string& path);

  // The hamlet optimizer of group `group` (built on demand), its state, and the diagnostics of its last update
  // (e.g. "energy" for Hamiltonian optimizers, [1] each).
  const optim::Optimizer& algorithm(std::size_t group = 0);
  const optim::OptimizerState& hamlet_state(std::size_t group = 0) const;
  const std::map<std::string, at::Tensor>& last_diagnostics(std::size_t group = 0) const;

 private:
  struct Group {
    optim::OptimizerPtr algorithm;
    std::string built_name;
    OptionMap built_options;
    bool initialised = false;  // state holds init() of this group's parameters
    optim::OptimizerState state;
    std::map<std::string, at::Tensor> diagnostics;
  };
  Group& group_state(std::size_t group);
  void step_group(std::size_t index, const at::Tensor& loss);
  std::vector<Group> groups_;
};

}  // namespace hamlet::interop
