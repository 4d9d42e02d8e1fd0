#include "hamlet/tasks/charlm.hpp"

#include <algorithm>
#include <cmath>

#include "dtype.hpp"
#include "linear_init.hpp"
#include "hamlet/core/error.hpp"
#include "hamlet/core/seed.hpp"

namespace hamlet::tasks {
namespace {

constexpr int64_t kVocab = data::kCharVocab;
// Streams derived from a problem seed: the initialisation and the window starts never share random numbers.
constexpr uint64_t kWindowStream = 1;  // stream 0 of a problem seed is its initialisation (init_per_problem)

}  // namespace

const OptionSpec<CharLmOptions>& CharLmOptions::spec() {
  using O = CharLmOptions;
  static const auto s =
      OptionSpec<O>("charlm")
          .add("data_dir", &O::data_dir, "directory of fortunes.txt (empty: <data root>/fortunes)")
          .add("hidden", &O::hidden, "GRU width, also the embedding size", checks::positive)
          .add("context", &O::context, "characters the model reads per window (it predicts each next one)",
               checks::positive)
          .add("batch_size", &O::batch_size, "windows per minibatch", checks::positive)
          .add("split", &O::split,
               "proportions train:validation:test of the corpus, cut into three consecutive parts",
               checks::positive_list)
          .add("dtype", &O::dtype, "float32 | float64", detail::check_dtype)
          .rule([](const std::string& owner, const O& o) {
            HAMLET_CHECK(o.split.size() == 3, owner, ".split must give three proportions train:validation:test, got ",
                         o.split.size());
          });
  return s;
}

CharLmBatch::CharLmBatch(at::Tensor text, TensorList params0, std::vector<uint64_t> problem_seeds, int64_t context,
                         int64_t batch_size)
    : text_(std::move(text)),
      params0_(std::move(params0)),
      problem_seeds_(std::move(problem_seeds)),
      context_(context),
      batch_size_(batch_size) {
  HAMLET_CHECK(text_.size(0) >= context_ + 1, "charlm: the split holds ", text_.size(0),
               " characters, fewer than one window of ", context_ + 1);
}

std::vector<std::string> CharLmBatch::param_names() const {
  return {"embedding", "w_ih", "w_hh", "b_ih", "b_hh", "w_out", "b_out"};
}

at::Tensor CharLmBatch::window_starts(int64_t step) const {
  HAMLET_CHECK(step >= 0, "charlm: negative step ", step);
  // A counter-based draw (a hash of seed, step and window) instead of a generator per problem and step: any step's
  // windows come out without replaying the earlier ones, and problem i's do not depend on its batch.
  const auto positions = static_cast<uint64_t>(text_.size(0) - context_);
  at::Tensor starts = at::empty({size(), batch_size_}, at::TensorOptions().dtype(at::kLong));
  int64_t* out = starts.data_ptr<int64_t>();
  for (const uint64_t s : problem_seeds_) {
    const uint64_t stream = mix_seeds({s, kWindowStream, static_cast<uint64_t>(step)});
    for (int64_t m = 0; m < batch_size_; ++m) *out++ = static_cast<int64_t>(mix_seed(stream, m) % positions);
  }
  return starts;
}

at::Tensor CharLmBatch::windows(int64_t step) const {
  const at::Tensor offsets = at::arange(context_ + 1, at::TensorOptions().dtype(at::kLong));
  const at::Tensor idx = (window_starts(step).unsqueeze(2) + offsets).to(text_.device());
  return text_.index_select(0, idx.reshape({-1})).to(at::kLong).view({size(), batch_size_, context_ + 1});
}

at::Tensor CharLmBatch::loss(const TensorList& params, int64_t step) const {
  HAMLET_CHECK(params.size() == 7, "charlm: expected 7 parameter tensors, got ", params.size());
  const at::Tensor &emb = params[0], &w_ih = params[1], &w_hh = params[2], &b_ih = params[3], &b_hh = params[4],
                   &w_out = params[5], &b_out = params[6];
  const int64_t b = size(), m = batch_size_, t_len = context_, h = w_hh.size(2);
  const at::Tensor win = windows(step);
  // Time-major [B, T, M]: each time step's rows are then one contiguous block.
  const at::Tensor inputs = win.narrow(2, 0, t_len).transpose(1, 2);
  const at::Tensor targets = win.narrow(2, 1, t_len).transpose(1, 2).reshape({-1});

  // The embedding is only ever followed by W_ih, so look up rows of their product [B, 98, 3H] (98 rows per problem)
  // instead of projecting the B·T·M embedded inputs: the same numbers, far fewer multiply-adds.
  const at::Tensor table = at::baddbmm(b_ih.unsqueeze(1), emb, w_ih.transpose(1, 2));
  const at::Tensor problem_offset = (at::arange(b, win.options()) * kVocab).view({b, 1, 1});
  const at::Tensor gi = table.reshape({b * kVocab, 3 * h})
                            .index_select(0, (inputs + problem_offset).reshape({-1}))
                            .view({b, t_len, m, 3 * h});

  const at::Tensor w_hh_t = w_hh.transpose(1, 2);
  const at::Tensor b_hh_row = b_hh.unsqueeze(1);
  const std::vector<int64_t> gate_blocks{2 * h, h};  // (r, z) | n
  at::Tensor state = at::zeros({b, m, h}, emb.options());
  std::vector<at::Tensor> states;
  states.reserve(static_cast<std::size_t>(t_len));
  // unbind / split / chunk rather than select / narrow: their backward is one stack or cat, whereas the backward
  // of each select or narrow zero-fills a tensor of the whole input, which made the backward pass quadratic in the
  // context (256 ms against 23 ms per problem-step for 8 problems at hidden = context = 64).
  for (const at::Tensor& x : gi.unbind(1)) {
    const at::Tensor gh = at::baddbmm(b_hh_row, state, w_hh_t);
    const std::vector<at::Tensor> xg = x.split_with_sizes(gate_blocks, 2), hg = gh.split_with_sizes(gate_blocks, 2);
    // r and z share one sigmoid over their adjacent gate blocks.
    const std::vector<at::Tensor> rz = at::sigmoid(xg[0] + hg[0]).chunk(2, 2);
    const at::Tensor n = at::tanh(xg[1] + rz[0] * hg[1]);
    state = n + rz[1] * (state - n);  // (1 − z) ⊙ n + z ⊙ h with one multiply
    states.push_back(state);
  }
  const at::Tensor hs = at::stack(states, 1).view({b, t_len * m, h});
  const at::Tensor logits = at::baddbmm(b_out.unsqueeze(1), hs, w_out.transpose(1, 2));
  const at::Tensor nll = at::cross_entropy_loss(logits.reshape({-1, kVocab}), targets, {}, at::Reduction::None);
  return nll.view({b, t_len * m}).mean(1);
}

CharLmTask::CharLmTask(CharLmOptions options) : options_(std::move(options)) {
  options_.validate();
  corpus_ = std::make_shared<const data::CharCorpus>(data::load_fortunes(options_.data_dir));
  const int64_t n = corpus_->size();
  const int64_t total = options_.split[0] + options_.split[1] + options_.split[2];
  // Cut points rounded to whole characters; every part must hold at least one window.
  bounds_ = {0, 0, 0, n};
  bounds_[1] = static_cast<int64_t>(std::llround(static_cast<double>(n) * options_.split[0] / total));
  bounds_[2] = static_cast<int64_t>(
      std::llround(static_cast<double>(n) * (options_.split[0] + options_.split[1]) / total));
  for (int p = 0; p < 3; ++p) {
    HAMLET_CHECK(bounds_[p + 1] - bounds_[p] >= options_.context + 1, "charlm.split ",
                 options_.split[0], ":", options_.split[1], ":", options_.split[2], " leaves the ",
                 split_name(static_cast<Split>(p)), " part ", bounds_[p + 1] - bounds_[p],
                 " characters, fewer than one window of charlm.context + 1 = ", options_.context + 1);
  }
}

std::pair<int64_t, int64_t> CharLmTask::part(Split split) const {
  const auto p = static_cast<std::size_t>(split);
  return {bounds_[p], bounds_[p + 1]};
}

OptionMap CharLmTask::options() const {
  OptionMap out = options_.to_map();
  out["data_source"] = corpus_->source;
  out["corpus_characters"] = std::to_string(corpus_->size());
  out["split_sizes"] = std::to_string(bounds_[1] - bounds_[0]) + ":" + std::to_string(bounds_[2] - bounds_[1]) +
                       ":" + std::to_string(bounds_[3] - bounds_[2]);
  out["vocabulary"] = std::to_string(kVocab);
  out["num_params"] = std::to_string(num_params());
  return out;
}

int64_t CharLmTask::num_params() const {
  const int64_t h = options_.hidden;
  return kVocab * h + 2 * (3 * h * h) + 2 * (3 * h) + kVocab * h + kVocab;
}

int64_t CharLmTask::data_bytes_per_problem() const {
  const int64_t element = options_.dtype == "float64" ? 8 : 4;
  const int64_t h = options_.hidden, rows = options_.batch_size * options_.context;
  // Per predicted character, kept for the backward pass: the gathered input gates, the hidden gates, r/z, n, the
  // state (≈ 10·H), and the logits with their log-softmax and gradient (3·98). Plus the window tokens.
  return rows * (10 * h + 3 * kVocab) * element + options_.batch_size * (options_.context + 1) * 8;
}

std::unique_ptr<ProblemBatch> CharLmTask::sample(Split split, uint64_t seed, int64_t first, int64_t count,
                                                 c10::Device device) const {
  HAMLET_CHECK(count > 0 && first >= 0, "charlm: cannot sample ", count, " problems from index ", first);
  const auto dtype = detail::parse_dtype("charlm", options_.dtype);
  const auto [begin, end] = part(split);
  const at::Tensor text = corpus_->tokens.narrow(0, begin, end - begin).to(device);

  // LibTorch's defaults: Embedding N(0, 1); GRU and Linear U(−1/√H, 1/√H) with fan-in H.
  const int64_t h = options_.hidden;
  const double bound = detail::fan_in_bound(h);
  std::vector<uint64_t> seeds = detail::problem_seeds(split, seed, first, count);
  TensorList params0 = detail::init_per_problem({{{kVocab, h}, 0.0},
                                                 {{3 * h, h}, bound},
                                                 {{3 * h, h}, bound},
                                                 {{3 * h}, bound},
                                                 {{3 * h}, bound},
                                                 {{kVocab, h}, bound},
                                                 {{kVocab}, bound}},
                                                seeds, device, dtype);
  return std::make_unique<CharLmBatch>(text, std::move(params0), std::move(seeds), options_.context,
                                       options_.batch_size);
}

}  // namespace hamlet::tasks
