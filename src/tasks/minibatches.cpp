#include "hamlet/tasks/minibatches.hpp"

#include "hamlet/core/error.hpp"
#include "hamlet/core/seed.hpp"

namespace hamlet::tasks {

MinibatchOrder::MinibatchOrder(std::vector<uint64_t> problem_seeds, int64_t rows, int64_t batch_size,
                               std::string owner)
    : problem_seeds_(std::move(problem_seeds)), rows_(rows), batch_size_(batch_size), owner_(std::move(owner)) {
  HAMLET_CHECK(batch_size_ > 0 && rows_ >= batch_size_, owner_, ": the split has ", rows_,
               " rows, fewer than one minibatch of ", batch_size_);
}

at::Tensor MinibatchOrder::indices(int64_t step) const {
  HAMLET_CHECK(step >= 0, owner_, ": negative step ", step);
  const int64_t per_pass = rows_ / batch_size_;
  const int64_t pass = step / per_pass;
  while (static_cast<int64_t>(orders_.size()) <= pass) {
    const auto e = static_cast<uint64_t>(orders_.size());
    std::vector<at::Tensor> rows;
    rows.reserve(problem_seeds_.size());
    for (const uint64_t s : problem_seeds_) {
      at::Generator gen = make_generator(mix_seed(s, e + 1));
      rows.push_back(at::randperm(rows_, gen, at::TensorOptions().dtype(at::kLong)));
    }
    orders_.push_back(at::stack(rows));
  }
  return orders_[pass].narrow(1, (step % per_pass) * batch_size_, batch_size_);
}

}  // namespace hamlet::tasks
