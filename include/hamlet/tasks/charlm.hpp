#pragma once
// Character-level language model task: a one-layer GRU on English text (the fortunes corpus,
// hamlet/data/char_corpus.hpp), mean next-character cross-entropy.
//
// Model, per problem, in LibTorch's layouts (torch::nn::Embedding, GRU, Linear): an embedding of the kCharVocab = 98
// character tokens into `hidden` dimensions, a GRU of width `hidden` from h0 = 0 with LibTorch's equations and
// gate order (r, z, n):
//   r = σ(W_ir x + b_ir + W_hr h + b_hr),  z = σ(W_iz x + b_iz + W_hz h + b_hz),
//   n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn)),  h' = (1 − z) ⊙ n + z ⊙ h,
// and an output projection to 98 logits. Parameters: "embedding" [B, 98, H], "w_ih" [B, 3H, H], "w_hh" [B, 3H, H],
// "b_ih" [B, 3H], "b_hh" [B, 3H], "w_out" [B, 98, H], "b_out" [B, 98]; 12,706 per problem at the default H = 32.
// Initialisation as LibTorch's defaults, redrawn per problem from the problem seed: embedding ~ N(0, 1), the GRU and
// the projection ~ U(−1/√H, 1/√H).
//
// Loss: a minibatch is `batch_size` windows of `context` + 1 consecutive tokens of the split's part of the corpus;
// the model reads the first `context` tokens of each window and predicts each next one. loss(θ, t) is the mean
// cross-entropy over the batch_size × context predictions (ln 98 ≈ 4.585 for uniform logits). Window starts are
// uniform over the part, a pure function of (problem seed, step, window).
//
// Splits: the corpus is cut into three consecutive parts in the proportions of `split` (train : validation : test,
// default 80 : 10 : 10), so validation and test problems read text that meta-training never saw.
//
// Why a GRU and not a small transformer: at width ≤ 64 and context ≤ 64 the GRU's recurrence costs 3H² multiply-adds
// per character (its input projection is a lookup in a [98, 3H] table, see loss()) against ~12H² + 2·T·H for one
// transformer layer, and what it costs beyond that on CPU is the per-op overhead of the loop over time, which one
// batched program shares among all B × batch_size sequences. The time loop is the only loop in loss().
//
// Options: data_dir (directory of fortunes.txt; empty: <data root>/fortunes), hidden (32), context (32),
// batch_size (32), split (80:10:10), dtype (float32 | float64).
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "hamlet/core/option_spec.hpp"
#include "hamlet/data/char_corpus.hpp"
#include "hamlet/tasks/task.hpp"

namespace hamlet::tasks {

struct CharLmOptions {
  std::string data_dir;  // empty: <data root>/fortunes
  int64_t hidden = 32;
  int64_t context = 32;
  int64_t batch_size = 32;
  std::vector<int64_t> split{80, 10, 10};
  std::string dtype = "float32";
  HAMLET_OPTIONS(CharLmOptions);
};

class CharLmBatch final : public ProblemBatch {
 public:
  // text: the split's part of the corpus, [N] uint8 tokens on the target device; params0: initial parameters;
  // problem_seeds: one per problem (window starts derive from them).
  CharLmBatch(at::Tensor text, TensorList params0, std::vector<uint64_t> problem_seeds, int64_t context,
              int64_t batch_size);
  int64_t size() const override { return static_cast<int64_t>(problem_seeds_.size()); }
  TensorList initial_params() const override { return params0_; }
  at::Tensor loss(const TensorList& params, int64_t step) const override;
  std::vector<std::string> param_names() const override;
  // Start offsets (into the part) of minibatch `step`'s windows for every problem, [B, batch_size] int64 on CPU.
  at::Tensor window_starts(int64_t step) const;
  // The windows of minibatch `step`: [B, batch_size, context + 1] int64 tokens on the batch's device.
  at::Tensor windows(int64_t step) const;

 private:
  at::Tensor text_;
  TensorList params0_;
  std::vector<uint64_t> problem_seeds_;
  int64_t context_, batch_size_;
};

class CharLmTask final : public Task {
 public:
  explicit CharLmTask(CharLmOptions options);
  std::string name() const override { return "charlm"; }
  // default_batch() stays 0 (all problems in one program): per problem, Adam steps cost the same from 8 to 32
  // problems per batch and 1.6x less than one by one (hamlet evaluate, 32 problems x 10 steps on the 2-core AMD
  // EPYC: 2.2 s with --batch=8 or 32, 2.7 s with 2, 3.6 s with 1).
  int64_t data_bytes_per_problem() const override;
  OptionMap options() const override;
  std::unique_ptr<ProblemBatch> sample(Split split, uint64_t seed, int64_t first, int64_t count,
                                       c10::Device device) const override;
  const data::CharCorpus& corpus() const { return *corpus_; }
  // The split's part of the corpus: tokens [begin, end).
  std::pair<int64_t, int64_t> part(Split split) const;
  // Parameters per problem.
  int64_t num_params() const;

 private:
  CharLmOptions options_;
  std::shared_ptr<const data::CharCorpus> corpus_;
  std::vector<int64_t> bounds_;  // 0 = train begin, validation begin, test begin, corpus end
};

}  // namespace hamlet::tasks
