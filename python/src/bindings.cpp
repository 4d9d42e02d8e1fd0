// hamlet._C: the C++ side of the Python package (docs/python.md). It exposes hamlet's optimizers as pure update
// functions on lists of tensors, hamlet's tasks (for tests that compare with `hamlet evaluate`), its datasets, and
// its readers of run files and comparison tables. The torch.optim.Optimizer subclass, the run-file dictionaries and
// everything else a Python user sees are written in Python on top of these (python/hamlet/*.py).
//
// Tensors cross the boundary without copies (LibTorch and PyTorch are the same library here: Debian's python3-torch
// runs on the libtorch hamlet links). hamlet::Error becomes hamlet.Error, a RuntimeError carrying hamlet's message.
#include <ATen/Parallel.h>
#include <torch/python.h>
#include <pybind11/stl.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "hamlet/core/error.hpp"
#include "hamlet/data/dataset.hpp"
#include "hamlet/eval/compare.hpp"
#include "hamlet/eval/compare_format.hpp"
#include "hamlet/eval/drift.hpp"
#include "hamlet/interop/learned_files.hpp"
#include "hamlet/io/h5.hpp"
#include "hamlet/io/schema.hpp"
#include "hamlet/io/weights_file.hpp"
#include "hamlet/learned/registry.hpp"
#include "hamlet/meta/meta_options.hpp"
#include "hamlet/optim/registry.hpp"
#include "hamlet/tasks/registry.hpp"

namespace py = pybind11;
using namespace hamlet;

namespace {

// A hamlet optimizer (hand-designed or learned): immutable, so one object serves every step.
struct Algorithm {
  optim::OptimizerPtr ptr;
};

// OptimizerState <-> {"step": int, "slots": {name: [tensors]}, "scalars": {name: tensor}}: plain Python values, so
// that torch.save / state_dict carry it unchanged.
py::dict state_to_python(const optim::OptimizerState& state) {
  py::dict out;
  out["step"] = state.step;
  py::dict slots, scalars;
  for (const auto& [name, tensors] : state.slots) slots[py::str(name)] = py::cast(tensors);
  for (const auto& [name, tensor] : state.scalars) scalars[py::str(name)] = py::cast(tensor);
  out["slots"] = slots;
  out["scalars"] = scalars;
  return out;
}

optim::OptimizerState state_from_python(const py::dict& state) {
  optim::OptimizerState out;
  HAMLET_CHECK(state.contains("step") && state.contains("slots") && state.contains("scalars"),
               "a hamlet optimizer state is a dict with 'step', 'slots' and 'scalars'");
  out.step = state["step"].cast<int64_t>();
  for (const auto& [name, tensors] : state["slots"].cast<py::dict>()) {
    out.slots[name.cast<std::string>()] = tensors.cast<std::vector<at::Tensor>>();
  }
  for (const auto& [name, tensor] : state["scalars"].cast<py::dict>()) {
    out.scalars[name.cast<std::string>()] = tensor.cast<at::Tensor>();
  }
  return out;
}

py::object attribute_to_python(const io::H5Reader& reader, const std::string& object, const std::string& name) {
  switch (reader.attribute_kind(object, name)) {
    case 's': return py::str(reader.attribute_string(object, name));
    case 'f': return py::float_(reader.attribute_double(object, name));
    case 'i': return py::int_(reader.attribute_int(object, name));
    default: return py::none();
  }
}

// A group as {"@attrs": {...}, child: tensor | [strings] | {...}}.
py::dict read_group(const io::H5Reader& reader, const std::string& path) {
  py::dict out, attrs;
  for (const auto& name : reader.attribute_names(path)) attrs[py::str(name)] = attribute_to_python(reader, path, name);
  out["@attrs"] = attrs;
  for (const auto& child : reader.children(path)) {
    const std::string child_path = path + "/" + child;
    if (reader.is_group(child_path)) {
      out[py::str(child)] = read_group(reader, child_path);
      continue;
    }
    try {
      out[py::str(child)] = py::cast(reader.read(child_path));
    } catch (const Error&) {
      out[py::str(child)] = py::cast(reader.read_strings(child_path));  // string datasets (method_names)
    }
  }
  return out;
}

// A batch of problems with the task that made it (a batch may refer to its task's data).
struct Problems {
  tasks::TaskPtr task;
  std::unique_ptr<tasks::ProblemBatch> batch;
};

}  // namespace

PYBIND11_MODULE(_C, m) {
  m.doc() = "hamlet's C++ core (use the hamlet package, not this module)";
  py::register_exception<Error>(m, "Error", PyExc_RuntimeError);

  m.def("hand_designed_names", &optim::hand_designed_names);
  m.def("learned_names", &learned::learned_names);
  m.def("task_names", &tasks::task_names);
  m.def("is_learned", &learned::is_learned);
  // The intra-op thread count hamlet's fused steps split over, as hamlet's libtorch sees it (torch.set_num_threads
  // sets it: the package and torch share one libtorch).
  m.def("num_threads", [] { return at::get_num_threads(); });
  m.def("weights_optimizer", [](const std::string& path) {
    const std::string name = io::read_weights(path, io::WeightsPart::kProvenance).optimizer;
    HAMLET_CHECK(!name.empty(), path, " is not a hamlet weights file (no 'optimizer')");
    return name;
  });

  py::class_<Algorithm>(m, "Algorithm")
      .def("name", [](const Algorithm& a) { return a.ptr->name(); })
      .def("learning_rate", [](const Algorithm& a) { return a.ptr->learning_rate(); })
      .def("needs_loss", [](const Algorithm& a) { return a.ptr->needs_loss(); })
      .def("options", [](const Algorithm& a) { return a.ptr->options(); })
      .def("init",
           [](const Algorithm& a, const std::vector<at::Tensor>& params) {
             at::NoGradGuard no_grad;
             return state_to_python(a.ptr->init(params));
           })
      .def("update", [](const Algorithm& a, const std::vector<at::Tensor>& params, const std::vector<at::Tensor>& grads,
                        const c10::optional<at::Tensor>& loss, const py::dict& state) {
        at::NoGradGuard no_grad;
        const optim::OptimizerState s = state_from_python(state);
        optim::StepResult r = a.ptr->update(params, grads, loss.has_value() ? *loss : at::Tensor(), s);
        return py::make_tuple(r.params, state_to_python(r.state), r.diagnostics);
      });
  m.def(
      "make_optimizer",
      [](const std::string& name, const OptionMap& options) { return Algorithm{interop::make_optimizer(name, options)}; },
      py::arg("name"), py::arg("options"));

  py::class_<Problems>(m, "Problems")
      .def("size", [](const Problems& p) { return p.batch->size(); })
      .def("initial_params", [](const Problems& p) { return p.batch->initial_params(); })
      .def("param_names", [](const Problems& p) { return p.batch->param_names(); })
      .def("loss", [](const Problems& p, const std::vector<at::Tensor>& params, int64_t step) {
        return p.batch->loss(params, step);
      });
  m.def(
      "sample_problems",
      [](const std::string& task, const OptionMap& options, const std::string& split, uint64_t seed, int64_t first,
         int64_t count) {
        Problems p;
        p.task = tasks::make_task(task, options);
        p.batch = p.task->sample(tasks::parse_split(split), seed, first, count, c10::Device("cpu"));
        return p;
      },
      py::arg("task"), py::arg("options"), py::arg("split"), py::arg("seed"), py::arg("first"), py::arg("count"));

  m.def("load_dataset", [](const std::string& name, const std::string& dir) {
    const data::Dataset d = data::load_dataset(name, dir);
    return py::make_tuple(d.images, d.labels, d.source);
  });

  // Options attributes of run files of every version (JSON, or the "k=v, k=v" text of version 0 files).
  m.def("parse_options", [](const std::string& text) { return io::read_options_text(text, 0, "options"); });
  m.def("read_h5", [](const std::string& path) {
    const io::H5Reader reader(path);
    return read_group(reader, "");
  });
  m.def(
      "compare_json",
      [](const std::vector<std::string>& inputs, const std::string& reference, const std::string& title) {
        std::vector<eval::RunInput> runs;
        for (const auto& text : inputs) runs.push_back(eval::parse_run_input(text));
        eval::CompareOptions o;
        o.reference = reference;
        o.title = title;
        o.protocol_defaults = {{"estimator", meta::EstimatorOptions().name}};  // as hamlet compare
        return eval::to_json(eval::compare(eval::read_runs(runs), o));
      },
      py::arg("inputs"), py::arg("reference"), py::arg("title"));
}
