#pragma once
// hamlet::Registry<Value>: names → what builds them (a factory, or a struct of factories and facts such as a
// learned optimizer's architecture keys), one shape for every kind of extension (hand-designed optimizers, learned
// optimizers, tasks). A registry's table is the one place a name is spelled: `hamlet list`, help texts, error
// messages and the tests' expected lists read names() from it.
//
//   static const Registry<Factory<TaskPtr>> r("task", {{"quadratic", make<QuadraticTask, QuadraticOptions>}, ...});
//   TaskPtr t = r.at("quadratic")(options);
//
// Tables are built in one function per kind (no static self-registration: hamlet is linked from static
// libraries, where an object file that registers itself but is not otherwise referenced would be dropped).
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "hamlet/core/error.hpp"
#include "hamlet/core/options.hpp"

namespace hamlet {

template <typename Value>
class Registry {
 public:
  struct Entry {
    std::string name;
    Value value;
  };

  // `kind` names the registry in messages ("optimizer", "task"); entries keep their order in names().
  Registry(std::string kind, std::vector<Entry> entries) : kind_(std::move(kind)), entries_(std::move(entries)) {
    for (std::size_t i = 0; i < entries_.size(); ++i) {
      for (std::size_t j = 0; j < i; ++j) {
        HAMLET_CHECK(entries_[i].name != entries_[j].name, "the ", kind_, " registry lists '", entries_[i].name,
                     "' twice");
      }
    }
  }

  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (const auto& e : entries_) out.push_back(e.name);
    return out;
  }

  bool contains(const std::string& name) const { return find(name) != nullptr; }

  // The value registered under `name`; hamlet::Error listing the valid names for an unknown one.
  const Value& at(const std::string& name) const {
    const Entry* e = find(name);
    if (e == nullptr) {
      std::string valid;
      for (const auto& entry : entries_) valid += (valid.empty() ? "" : ", ") + entry.name;
      throw Error(detail::concat("unknown ", kind_, " '", name, "'; valid ", kind_, "s: ", valid));
    }
    return e->value;
  }

 private:
  const Entry* find(const std::string& name) const {
    for (const auto& e : entries_) {
      if (e.name == name) return &e;
    }
    return nullptr;
  }

  std::string kind_;
  std::vector<Entry> entries_;
};

// The value type of a registry of plain factories.
template <typename Product>
using Factory = std::function<Product(OptionMap)>;

}  // namespace hamlet
