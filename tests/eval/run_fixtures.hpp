#pragma once
// Hand-made evaluate run files for the compare and suite tests: a few methods with chosen per-problem losses.
#include <ATen/ATen.h>

#include <cstdint>
#include <string>
#include <vector>

#include "hamlet/io/h5.hpp"

namespace hamlet::test {

struct RunMethod {
  std::string name;
  std::vector<double> final_loss;       // per problem: the loss at the last logged step
  std::string options;                  // attribute text (JSON or k=v)
  double validation_score = -1;         // < 0: not tuned
  std::vector<double> first_loss = {};  // per problem, the loss at step 0; empty: final + 1
};

// A run file of `methods` on `problems` problems of `task`, 2 logged steps each (step 0 and the last).
inline void write_run(const std::string& path, const std::vector<RunMethod>& methods, int64_t problems = 4,
                      const std::string& task = "quadratic") {
  io::H5Writer w(path);
  w.set_attribute("/", "task", task);
  w.set_attribute("/", "split", "test");
  w.set_attribute("/", "seed", int64_t{0});
  w.set_attribute("/", "problems", problems);
  w.set_attribute("/", "steps", int64_t{2});
  std::vector<std::string> names;
  for (const auto& m : methods) {
    names.push_back(m.name);
    const at::Tensor last = at::tensor(m.final_loss, at::kDouble);
    const at::Tensor first = m.first_loss.empty() ? last + 1.0 : at::tensor(m.first_loss, at::kDouble);
    w.write("/methods/" + m.name + "/loss", at::stack({first, last}, 1));
    w.set_attribute("/methods/" + m.name, "options", m.options);
    if (m.validation_score >= 0) {
      w.write("/methods/" + m.name + "/tune/score", at::tensor({m.validation_score}, at::kDouble));
      w.set_attribute("/methods/" + m.name + "/tune", "best_score", m.validation_score);
    }
  }
  w.write_strings("/method_names", names);
  w.commit();
}

}  // namespace hamlet::test
