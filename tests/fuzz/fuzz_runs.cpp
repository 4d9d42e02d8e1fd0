// Fuzz target: evaluate run files, read by eval::read_runs (hamlet compare) and then compared and rendered the way
// `hamlet compare` does (eval::compare, to_markdown, to_csv, to_json), and by eval::export_curves (hamlet export).
//
// Structure-aware (h5_program.hpp explains why and the input format): the first byte picks the row label given with
// the file, the rest is a program of groups, datasets and attributes written with H5Writer into a valid HDF5 file. A
// hamlet::Error is the expected answer to a bad file; a crash, a sanitizer report or any other exception type
// escaping these functions is a finding.
#include "h5_program.hpp"
#include "hamlet/eval/compare.hpp"
#include "hamlet/eval/compare_format.hpp"
#include "hamlet/eval/drift.hpp"
#include "hamlet/eval/curves.hpp"

using namespace hamlet;

namespace {

std::string g_path, g_csv;

void run(const uint8_t* data, std::size_t size, bool strict) {
  fuzz::Cursor in(data, size);
  static const std::vector<std::string> labels = {"", "{method} run", "row"};
  const std::string label = labels[in.u8() % labels.size()];
  fuzz::write_program(in, g_path);
  try {
    const eval::RunSet runs = eval::read_runs(std::vector<eval::RunInput>{{g_path, label}});
    if (!runs.methods.empty()) {
      eval::CompareOptions options;
      options.reference = runs.methods.front().name;
      const eval::Comparison c = eval::compare(runs, options);
      (void)eval::to_markdown(c);
      (void)eval::to_csv(c);
      (void)eval::to_json(c);
    }
  } catch (const Error&) {
    if (strict) throw;
  }
  try {
    eval::export_curves(g_path, g_csv);
  } catch (const Error&) {
    if (strict) throw;
  }
}

struct Method {
  std::string name, options;
  bool tuned;
};

// A run file as `hamlet evaluate` writes it (the attributes read_runs needs; loss [problems, steps] per method).
std::string run_seed(uint8_t label, int64_t problems, int64_t steps, const std::vector<Method>& methods) {
  fuzz::Encoder e;
  e.u8(label);
  e.attribute("/", "task", std::string("quadratic"));
  e.attribute("/", "task_options", std::string("{\"dim\":\"3\"}"));
  e.attribute("/", "split", std::string("test"));
  e.attribute("/", "seed", int64_t{0});
  e.attribute("/", "problems", problems);
  e.attribute("/", "steps", steps);
  std::vector<std::string> names;
  for (const auto& m : methods) names.push_back(m.name);
  e.strings("/method_names", names);
  for (std::size_t i = 0; i < methods.size(); ++i) {
    const std::string group = "/methods/" + methods[i].name;
    at::Tensor loss = at::linspace(2.0, 1.0, problems * steps, at::kDouble).reshape({problems, steps});
    loss = loss + 0.125 * static_cast<double>(i) * at::arange(problems, at::kDouble).unsqueeze(1);
    e.dataset(group + "/loss", loss, true);
    e.attribute(group, "options", methods[i].options);
    if (methods[i].tuned) e.attribute(group + "/tune", "best_score", 0.5 + static_cast<double>(i));
  }
  return e.bytes();
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  g_path = fuzz::scratch_file("runs", ".h5");
  g_csv = fuzz::scratch_file("runs", ".csv");
  fuzz::maybe_write_seeds(
      {{"valid_one_method", run_seed(0, 3, 4, {{"adam", "{\"lr\":\"0.1\"}", true}})},
       {"valid_two_methods", run_seed(0, 4, 3,
                                      {{"adam", "{\"lr\":\"0.1\"}", true}, {"sgd", "lr=0.1", true},
                                       {"phnn", "out_mul=0.1, weights=/nonexistent/w.h5", false}})},
       {"valid_labelled", run_seed(1, 2, 2, {{"adam", "lr=0.1", false}, {"sgd", "lr=0.1", false}})}},
      [](const uint8_t* d, std::size_t n) { run(d, n, true); });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  run(data, size, fuzz::strict());
  return 0;
}
