#include "hamlet/interop/torch_optimizer.hpp"

#include <torch/serialize/archive.h>

#include <utility>

#include "hamlet/core/error.hpp"
#include "hamlet/core/output_file.hpp"
#include "hamlet/interop/learned_files.hpp"
#include "hamlet/io/weights_file.hpp"
#include "hamlet/learned/registry.hpp"

namespace hamlet::interop {
namespace {

// Bumped whenever the archive layout below changes, so an old archive is refused instead of misread.
constexpr int64_t kArchiveFormat = 1;

std::string lr_key(const std::string& name) { return learned::is_learned(name) ? "out_mul" : "lr"; }

// Archive keys must be plain identifiers (they become attribute names of a TorchScript module).
std::string key(std::size_t group, const std::string& what) { return "g" + std::to_string(group) + "_" + what; }

void write_string(torch::serialize::OutputArchive& archive, const std::string& name, const std::string& value) {
  archive.write(name, c10::IValue(value));
}
void write_int(torch::serialize::OutputArchive& archive, const std::string& name, int64_t value) {
  archive.write(name, c10::IValue(value));
}

std::string read_string(torch::serialize::InputArchive& archive, const std::string& name) {
  c10::IValue value;
  HAMLET_CHECK(archive.try_read(name, value) && value.isString(), "TorchOptimizer::load: the archive has no string '",
               name, "' (not a hamlet TorchOptimizer archive?)");
  return value.toStringRef();
}
int64_t read_int(torch::serialize::InputArchive& archive, const std::string& name) {
  c10::IValue value;
  HAMLET_CHECK(archive.try_read(name, value) && value.isInt(), "TorchOptimizer::load: the archive has no integer '",
               name, "' (not a hamlet TorchOptimizer archive?)");
  return value.toInt();
}
at::Tensor read_tensor(torch::serialize::InputArchive& archive, const std::string& name) {
  at::Tensor value;
  HAMLET_CHECK(archive.try_read(name, value), "TorchOptimizer::load: the archive has no tensor '", name, "'");
  return value;
}

const TorchOptimizerOptions& options_of(const torch::optim::OptimizerParamGroup& group) {
  return static_cast<const TorchOptimizerOptions&>(group.options());
}

// Adds the leading problem dimension (B = 1) hamlet's update interface expects.
at::Tensor as_problem(const at::Tensor& x) { return x.detach().unsqueeze(0); }

}  // namespace

TorchOptimizerOptions::TorchOptimizerOptions(std::string name, OptionMap options)
    : name_(std::move(name)), options_(std::move(options)) {}

TorchOptimizerOptions TorchOptimizerOptions::from_weights(const std::string& path, OptionMap overrides) {
  const std::string name = io::read_weights(path, io::WeightsPart::kProvenance).optimizer;
  HAMLET_CHECK(learned::is_learned(name), path, ": records optimizer '", name, "', which is not a learned optimizer");
  overrides["weights"] = path;
  return TorchOptimizerOptions(name, std::move(overrides));
}

double TorchOptimizerOptions::get_lr() const {
  // Built rather than parsed here, so an unset value reads as the optimizer's default (or, for a weight file, the
  // value recorded in it).
  return make_optimizer(name_, options_)->learning_rate();
}

void TorchOptimizerOptions::set_lr(const double lr) { options_[lr_key(name_)] = format_number(lr); }

TorchOptimizer::TorchOptimizer(std::vector<torch::optim::OptimizerParamGroup> param_groups,
                               TorchOptimizerOptions defaults)
    : torch::optim::Optimizer(std::move(param_groups), std::make_unique<TorchOptimizerOptions>(std::move(defaults))) {
  // Build every group's optimizer now, so a bad name, option or weight file fails at construction, not at the
  // first step.
  for (std::size_t g = 0; g < param_groups_.size(); ++g) (void)algorithm(g);
}

TorchOptimizer::TorchOptimizer(std::vector<at::Tensor> params, TorchOptimizerOptions defaults)
    : TorchOptimizer(std::vector<torch::optim::OptimizerParamGroup>{torch::optim::OptimizerParamGroup(std::move(params))},
                     std::move(defaults)) {}

TorchOptimizer::Group& TorchOptimizer::group_state(std::size_t group) {
  HAMLET_CHECK(group < param_groups_.size(), "TorchOptimizer: no param group ", group, " (there are ",
               param_groups_.size(), ")");
  // add_param_group() of the base class may have added groups since the last call.
  if (groups_.size() < param_groups_.size()) groups_.resize(param_groups_.size());
  return groups_[group];
}

const optim::Optimizer& TorchOptimizer::algorithm(std::size_t group) {
  Group& g = group_state(group);
  const TorchOptimizerOptions& o = options_of(param_groups_[group]);
  if (!g.algorithm || g.built_name != o.name() || g.built_options != o.options()) {
    HAMLET_CHECK(!g.initialised || g.built_name == o.name(), "TorchOptimizer: param group ", group,
                 " switched optimizer from '", g.built_name, "' to '", o.name(),
                 "' after its state was created; make a new TorchOptimizer instead");
    g.algorithm = make_optimizer(o.name(), o.options());
    g.built_name = o.name();
    g.built_options = o.options();
  }
  return *g.algorithm;
}

const optim::OptimizerState& TorchOptimizer::hamlet_state(std::size_t group) const {
  HAMLET_CHECK(group < groups_.size(), "TorchOptimizer: no state for param group ", group);
  return groups_[group].state;
}

const std::map<std::string, at::Tensor>& TorchOptimizer::last_diagnostics(std::size_t group) const {
  HAMLET_CHECK(group < groups_.size(), "TorchOptimizer: no state for param group ", group);
  return groups_[group].diagnostics;
}

at::Tensor TorchOptimizer::step(LossClosure closure) {
  at::NoGradGuard no_grad;
  at::Tensor loss;
  if (closure != nullptr) {
    at::AutoGradMode enable_grad(true);
    loss = closure();
  }
  for (std::size_t g = 0; g < param_groups_.size(); ++g) step_group(g, loss);
  return loss;
}

void TorchOptimizer::step_group(std::size_t index, const at::Tensor& loss) {
  const std::vector<at::Tensor>& params = param_groups_[index].params();
  std::size_t with_grad = 0;
  for (const auto& p : params) with_grad += p.grad().defined() ? 1 : 0;
  if (with_grad == 0) return;
  if (with_grad != params.size()) {
    std::string missing;
    for (std::size_t i = 0; i < params.size(); ++i) {
      if (!params[i].grad().defined()) missing += (missing.empty() ? "" : ", ") + std::to_string(i);
    }
    throw Error(detail::concat("TorchOptimizer: param group ", index, ": parameters ", missing, " have no gradient ",
                               "while the others do; hamlet updates a group's tensors together, so give every ",
                               "parameter of the group a gradient or put the frozen ones in no group"));
  }
  const optim::Optimizer& opt = algorithm(index);
  Group& g = group_state(index);
  const TorchOptimizerOptions& o = options_of(param_groups_[index]);

  TensorList thetas, grads;
  for (const auto& p : params) {
    thetas.push_back(as_problem(p));
    grads.push_back(as_problem(p.grad()));
  }
  if (o.check_finite()) {
    std::vector<at::Tensor> finite;
    for (const auto& grad : grads) finite.push_back(grad.isfinite().all());
    if (!at::stack(finite).all().item<bool>()) {
      for (std::size_t i = 0; i < grads.size(); ++i) {
        HAMLET_CHECK(finite[i].item<bool>(), "TorchOptimizer: param group ", index, ", parameter ", i, " (shape ",
                     params[i].sizes(), "): the gradient holds NaN or inf; nothing was updated");
      }
    }
  }
  at::Tensor loss_values;
  if (opt.needs_loss()) {
    HAMLET_CHECK(loss.defined(), "TorchOptimizer: '", opt.name(), "' reads the loss; call step(closure) with a ",
                 "closure that returns the loss");
    HAMLET_CHECK(loss.numel() == 1, "TorchOptimizer: the closure returned a loss with ", loss.numel(),
                 " elements; '", opt.name(), "' needs a scalar loss");
    loss_values = loss.detach().reshape({1}).to(thetas.front().scalar_type());
  }
  if (!g.initialised) {
    g.state = opt.init(thetas);
    g.initialised = true;
  }
  optim::StepResult result = opt.update(thetas, grads, loss_values, g.state);
  for (std::size_t i = 0; i < params.size(); ++i) {
    // The parameter is a leaf the user's graph refers to: change its values, not the tensor.
    at::Tensor p = params[i];
    p.copy_(result.params[i].reshape(params[i].sizes()));
  }
  g.state = std::move(result.state);
  g.diagnostics = std::move(result.diagnostics);
}

void TorchOptimizer::save(torch::serialize::OutputArchive& archive) const {
  write_int(archive, "hamlet_format", kArchiveFormat);
  write_int(archive, "groups", static_cast<int64_t>(param_groups_.size()));
  for (std::size_t g = 0; g < param_groups_.size(); ++g) {
    const TorchOptimizerOptions& o = options_of(param_groups_[g]);
    write_string(archive, key(g, "name"), o.name());
    write_int(archive, key(g, "check_finite"), o.check_finite() ? 1 : 0);
    write_int(archive, key(g, "options"), static_cast<int64_t>(o.options().size()));
    std::size_t i = 0;
    for (const auto& [k, v] : o.options()) {
      write_string(archive, key(g, "option_key_" + std::to_string(i)), k);
      write_string(archive, key(g, "option_value_" + std::to_string(i)), v);
      ++i;
    }
    const auto& params = param_groups_[g].params();
    write_int(archive, key(g, "params"), static_cast<int64_t>(params.size()));
    for (std::size_t p = 0; p < params.size(); ++p) {
      archive.write(key(g, "shape_" + std::to_string(p)), c10::IValue(params[p].sizes().vec()));
    }
    const bool initialised = g < groups_.size() && groups_[g].initialised;
    write_int(archive, key(g, "initialised"), initialised ? 1 : 0);
    if (!initialised) continue;
    const optim::OptimizerState& state = groups_[g].state;
    write_int(archive, key(g, "step"), state.step);
    write_int(archive, key(g, "slots"), static_cast<int64_t>(state.slots.size()));
    std::size_t s = 0;
    for (const auto& [name, tensors] : state.slots) {
      const std::string slot = "slot" + std::to_string(s);
      write_string(archive, key(g, slot + "_name"), name);
      write_int(archive, key(g, slot + "_size"), static_cast<int64_t>(tensors.size()));
      for (std::size_t t = 0; t < tensors.size(); ++t) {
        archive.write(key(g, slot + "_" + std::to_string(t)), tensors[t].detach());
      }
      ++s;
    }
    write_int(archive, key(g, "scalars"), static_cast<int64_t>(state.scalars.size()));
    s = 0;
    for (const auto& [name, tensor] : state.scalars) {
      write_string(archive, key(g, "scalar" + std::to_string(s) + "_name"), name);
      archive.write(key(g, "scalar" + std::to_string(s)), tensor.detach());
      ++s;
    }
  }
}

void TorchOptimizer::load(torch::serialize::InputArchive& archive) {
  const int64_t format = read_int(archive, "hamlet_format");
  HAMLET_CHECK(format == kArchiveFormat, "TorchOptimizer::load: archive format ", format, ", this build reads ",
               kArchiveFormat);
  const int64_t n_groups = read_int(archive, "groups");
  HAMLET_CHECK(n_groups == static_cast<int64_t>(param_groups_.size()), "TorchOptimizer::load: the archive holds ",
               n_groups, " param groups, this optimizer has ", param_groups_.size());
  // Read everything first and change this optimizer only when the whole archive fits it.
  std::vector<TorchOptimizerOptions> options;
  std::vector<Group> loaded(param_groups_.size());
  for (std::size_t g = 0; g < param_groups_.size(); ++g) {
    OptionMap map;
    const int64_t n_options = read_int(archive, key(g, "options"));
    for (int64_t i = 0; i < n_options; ++i) {
      map[read_string(archive, key(g, "option_key_" + std::to_string(i)))] =
          read_string(archive, key(g, "option_value_" + std::to_string(i)));
    }
    TorchOptimizerOptions o(read_string(archive, key(g, "name")), map);
    const auto& here = static_cast<const TorchOptimizerOptions&>(param_groups_[g].options());
    HAMLET_CHECK(o.name() == here.name(), "TorchOptimizer::load: param group ", g, " of the archive holds the state ",
                 "of optimizer '", o.name(), "', this TorchOptimizer runs '", here.name(), "'; build it with '",
                 o.name(), "' to resume that run");
    o.check_finite(read_int(archive, key(g, "check_finite")) != 0);
    options.push_back(o);

    const auto& params = param_groups_[g].params();
    const int64_t n_params = read_int(archive, key(g, "params"));
    HAMLET_CHECK(n_params == static_cast<int64_t>(params.size()), "TorchOptimizer::load: param group ", g,
                 " has ", n_params, " parameters in the archive and ", params.size(), " here");
    for (std::size_t p = 0; p < params.size(); ++p) {
      c10::IValue shape;
      const std::string name = key(g, "shape_" + std::to_string(p));
      HAMLET_CHECK(archive.try_read(name, shape) && shape.isIntList(), "TorchOptimizer::load: no shape '", name, "'");
      HAMLET_CHECK(shape.toIntVector() == params[p].sizes().vec(), "TorchOptimizer::load: param group ", g,
                   ", parameter ", p, " has shape ", c10::IntArrayRef(shape.toIntVector()), " in the archive and ",
                   params[p].sizes(), " here");
    }
    Group& group = loaded[g];
    group.initialised = read_int(archive, key(g, "initialised")) != 0;
    if (!group.initialised) continue;
    const c10::Device device = params.empty() ? c10::Device(c10::kCPU) : params.front().device();
    group.state.step = read_int(archive, key(g, "step"));
    const int64_t n_slots = read_int(archive, key(g, "slots"));
    for (int64_t s = 0; s < n_slots; ++s) {
      const std::string slot = "slot" + std::to_string(s);
      const std::string name = read_string(archive, key(g, slot + "_name"));
      const int64_t size = read_int(archive, key(g, slot + "_size"));
      TensorList tensors;
      for (int64_t t = 0; t < size; ++t) {
        tensors.push_back(read_tensor(archive, key(g, slot + "_" + std::to_string(t))).to(device));
      }
      group.state.slots[name] = std::move(tensors);
    }
    const int64_t n_scalars = read_int(archive, key(g, "scalars"));
    for (int64_t s = 0; s < n_scalars; ++s) {
      const std::string name = read_string(archive, key(g, "scalar" + std::to_string(s) + "_name"));
      group.state.scalars[name] = read_tensor(archive, key(g, "scalar" + std::to_string(s))).to(device);
    }
  }
  // Build the optimizers before touching anything, so a weight file that is gone fails the load cleanly.
  for (std::size_t g = 0; g < loaded.size(); ++g) {
    loaded[g].algorithm = make_optimizer(options[g].name(), options[g].options());
    loaded[g].built_name = options[g].name();
    loaded[g].built_options = options[g].options();
  }
  for (std::size_t g = 0; g < param_groups_.size(); ++g) {
    param_groups_[g].set_options(std::make_unique<TorchOptimizerOptions>(options[g]));
  }
  groups_ = std::move(loaded);
}

void TorchOptimizer::save_to_file(const std::string& path) const {
  write_file_atomically(
      path,
      [&](const std::string& temp) {
        try {
          torch::serialize::OutputArchive archive;
          save(archive);
          archive.save_to(temp);
        } catch (const c10::Error& e) {
          throw Error("cannot write TorchOptimizer archive " + path + ": " + e.what_without_backtrace());
        }
      },
      "TorchOptimizer archive");
}

void TorchOptimizer::load_from_file(const std::string& path) {
  torch::serialize::InputArchive archive;
  try {
    archive.load_from(path);
  } catch (const c10::Error& e) {
    std::string cause = e.what_without_backtrace();
    cause = cause.substr(0, cause.find('\n'));
    throw Error(path + " is not a readable torch archive (torch::save of a TorchOptimizer writes one): " + cause);
  }
  load(archive);
}

}  // namespace hamlet::interop
