// The "csv-classifier" task of the custom-task example: reading the file, the batched loss, sampling, registration.
// The contract of each piece is in csv_classifier.hpp.
#include "csv_classifier.hpp"

#include <cmath>
#include <fstream>
#include <optional>
#include <sstream>
#include <utility>
#include <vector>

#include "hamlet/core/error.hpp"
#include "hamlet/core/seed.hpp"
#include "hamlet/tasks/registry.hpp"

namespace custom_task {

const hamlet::OptionSpec<CsvClassifierOptions>& CsvClassifierOptions::spec() {
  static const auto s =
      hamlet::OptionSpec<CsvClassifierOptions>("csv-classifier")
          .add("data", &CsvClassifierOptions::data, "CSV file: a header, then rows of features and a 0/1 label",
               [](const std::string& field, const std::string& value) {
                 HAMLET_CHECK(!value.empty(), field, " must name a CSV file");
               })
          .add("hidden", &CsvClassifierOptions::hidden, "hidden tanh units of the MLP", hamlet::checks::positive)
          .add("examples", &CsvClassifierOptions::examples, "rows per problem, drawn from its split's pool",
               hamlet::checks::positive);
  return s;
}

namespace {

std::vector<std::string> split_commas(const std::string& line) {
  std::vector<std::string> out;
  std::stringstream in(line);
  std::string item;
  while (std::getline(in, item, ',')) out.push_back(item);
  if (!line.empty() && line.back() == ',') out.emplace_back();  // a trailing comma is an empty last column
  return out;
}

// B problems as one tensor program: rows X [B, n, D], labels y [B, n].
class CsvClassifierBatch final : public hamlet::tasks::ProblemBatch {
 public:
  CsvClassifierBatch(at::Tensor x, at::Tensor y, hamlet::TensorList theta0)
      : x_(std::move(x)), y_(std::move(y)), theta0_(std::move(theta0)) {}
  int64_t size() const override { return x_.size(0); }
  hamlet::TensorList initial_params() const override { return theta0_; }
  // Mean binary cross-entropy of each problem's logits, [B]; batched products, no loop over problems.
  at::Tensor loss(const hamlet::TensorList& params, int64_t /*step: full batch*/) const override {
    const at::Tensor h = at::tanh(at::bmm(x_, params[0]) + params[1].unsqueeze(1));        // [B, n, H]
    const at::Tensor z = at::bmm(h, params[2].unsqueeze(2)).squeeze(2) + params[3].unsqueeze(1);  // [B, n]
    // log(1 + e^z) − y·z is the cross-entropy of the logit z, written so that it cannot overflow.
    return (at::softplus(z) - y_ * z).mean(1);
  }
  std::vector<std::string> param_names() const override { return {"W0", "b0", "w1", "b1"}; }

 private:
  at::Tensor x_, y_;
  hamlet::TensorList theta0_;
};

}  // namespace

CsvTable read_csv_table(const std::string& path) {
  std::ifstream in(path);
  HAMLET_CHECK(in.good(), "cannot open the data file '", path,
               "' (the example ships examples/custom_task/two_moons.csv; --data=PATH names another)");
  std::string line;
  HAMLET_CHECK(static_cast<bool>(std::getline(in, line)), path, ": the file is empty; expected a header line");
  const size_t columns = split_commas(line).size();
  HAMLET_CHECK(columns >= 2, path, ":1: the header names ", columns,
               " column(s); expected at least one feature and the label");
  std::vector<double> values, labels;
  for (int64_t line_number = 2; std::getline(in, line); ++line_number) {
    if (!line.empty() && line.back() == '\r') line.pop_back();  // a file written on Windows
    if (line.empty()) continue;
    const std::vector<std::string> items = split_commas(line);
    HAMLET_CHECK(items.size() == columns, path, ":", line_number, ": ", items.size(), " column(s), but the header has ",
                 columns);
    for (size_t c = 0; c < columns; ++c) {
      const std::optional<double> v = hamlet::parse_number(items[c]);
      HAMLET_CHECK(v && std::isfinite(*v), path, ":", line_number, ": column ", c + 1, " is '", items[c],
                   "', not a finite number");
      if (c + 1 < columns) {
        values.push_back(*v);
      } else {
        HAMLET_CHECK(*v == 0 || *v == 1, path, ":", line_number, ": the label (last column) is ", items[c],
                     "; expected 0 or 1");
        labels.push_back(*v);
      }
    }
  }
  const auto n = static_cast<int64_t>(labels.size());
  HAMLET_CHECK(n >= 5, path, ": ", n, " data row(s); the split into train, validation and test needs at least 5");
  const auto f64 = at::TensorOptions().dtype(at::kDouble);
  CsvTable t;
  const at::Tensor raw = at::tensor(values, f64).reshape({n, static_cast<int64_t>(columns) - 1});
  t.labels = at::tensor(labels, f64);
  // Row r's pool is r mod 5: 3 validation, 4 test, else train (csv_classifier.hpp).
  const at::Tensor fold = at::arange(n, at::kLong).remainder(5);
  t.pool[static_cast<int>(hamlet::tasks::Split::kTrain)] = at::nonzero(fold.lt(3)).squeeze(1);
  t.pool[static_cast<int>(hamlet::tasks::Split::kValidation)] = at::nonzero(fold.eq(3)).squeeze(1);
  t.pool[static_cast<int>(hamlet::tasks::Split::kTest)] = at::nonzero(fold.eq(4)).squeeze(1);
  // Standardise with the train pool's statistics only: the held-out rows must not shape the problems.
  const at::Tensor train = raw.index_select(0, t.pool[0]);
  const at::Tensor mean = train.mean(0), sd = train.std(0);
  for (int64_t c = 0; c < sd.size(0); ++c) {
    HAMLET_CHECK(sd[c].item<double>() > 0, path, ": feature column ", c + 1,
                 " is constant over the train rows; it cannot be standardised (remove it)");
  }
  t.features = (raw - mean) / sd;
  return t;
}

CsvClassifierTask::CsvClassifierTask(CsvClassifierOptions options)
    : options_(hamlet::validated(std::move(options))), table_(read_csv_table(options_.data)) {
  for (const auto split : {hamlet::tasks::Split::kTrain, hamlet::tasks::Split::kValidation, hamlet::tasks::Split::kTest}) {
    HAMLET_CHECK(options_.examples <= pool_size(split), "csv-classifier.examples is ", options_.examples, ", but the ",
                 hamlet::tasks::split_name(split), " pool of '", options_.data, "' holds only ", pool_size(split),
                 " rows (every fifth row is validation, every fifth test)");
  }
}

int64_t CsvClassifierTask::data_bytes_per_problem() const {
  return options_.examples * (features() + 1 + options_.hidden) * static_cast<int64_t>(sizeof(float));
}

std::unique_ptr<hamlet::tasks::ProblemBatch> CsvClassifierTask::sample(hamlet::tasks::Split split, uint64_t seed,
                                                                       int64_t first, int64_t count,
                                                                       c10::Device device) const {
  const at::Tensor& pool = table_.pool[static_cast<int>(split)];
  const int64_t d = features(), h = options_.hidden;
  const auto f64 = at::TensorOptions().dtype(at::kDouble);
  std::vector<at::Tensor> xs, ys, w0s, w1s;
  for (int64_t i = first; i < first + count; ++i) {
    // Everything about problem i comes from its own generator, in a fixed order (rows, then W0, then w1): the same
    // problem in any batch, for every optimizer, which is what makes the comparisons paired.
    at::Generator gen = hamlet::make_generator(hamlet::tasks::problem_seed(split, seed, i));
    const at::Tensor rows = pool.index_select(0, at::randperm(pool.size(0), gen, at::kLong).slice(0, 0, options_.examples));
    xs.push_back(table_.features.index_select(0, rows));
    ys.push_back(table_.labels.index_select(0, rows));
    w0s.push_back((at::rand({d, h}, gen, f64) * 2 - 1) / std::sqrt(static_cast<double>(d)));
    w1s.push_back((at::rand({h}, gen, f64) * 2 - 1) / std::sqrt(static_cast<double>(h)));
  }
  const auto on_device = [&](const std::vector<at::Tensor>& parts) { return at::stack(parts).to(device, at::kFloat); };
  const auto f32 = at::TensorOptions().dtype(at::kFloat).device(device);
  hamlet::TensorList theta0 = {on_device(w0s), at::zeros({count, h}, f32), on_device(w1s), at::zeros({count}, f32)};
  return std::make_unique<CsvClassifierBatch>(on_device(xs), on_device(ys), std::move(theta0));
}

void register_csv_classifier() {
  // A function-local static makes a second call a no-op (register_task refuses a name twice).
  static const bool done = [] {
    hamlet::tasks::register_task("csv-classifier",
                                 hamlet::buildable<hamlet::tasks::TaskPtr, CsvClassifierTask, CsvClassifierOptions>());
    return true;
  }();
  (void)done;
}

}  // namespace custom_task
