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
// libraries, where an object file that registers itself but is not otherwise referenced would be dropped). Code
// outside hamlet (a test, a user's program) extends a kind at run time with its register_* function, which calls
// add(): docs/extending.md.
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "hamlet/core/error.hpp"
#include "hamlet/core/option_spec.hpp"
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

  // "a, b or c", for messages and help texts.
  std::string describe_names() const {
    std::string out;
    for (std::size_t i = 0; i < entries_.size(); ++i) {
      out += (i == 0 ? "" : i + 1 == entries_.size() ? " or " : ", ") + entries_[i].name;
    }
    return out;
  }

  // Registers `name` after the built-in entries; a name already taken is an error.
  void add(std::string name, Value value) {
    HAMLET_CHECK(!contains(name), "the ", kind_, " registry already has '", name, "'");
    HAMLET_CHECK(!name.empty(), "a ", kind_, " name cannot be empty");
    entries_.push_back(Entry{std::move(name), std::move(value)});
  }

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

// The value type of a registry whose products are configured by an options struct (core/option_spec.hpp): how to
// build one from its options, and what those options are (help texts, hamlet list, docs/cli.md).
template <typename Product>
struct Buildable {
  Factory<Product> make;
  std::vector<OptionInfo> options;
};

// The entry of a product type T built from `Options` (an options struct with a spec()) by T(Options), held as
// Pointer (std::shared_ptr<const Base>, ...).
template <typename Pointer, typename T, typename Options>
Buildable<Pointer> buildable() {
  return {[](OptionMap options) -> Pointer { return std::make_shared<T>(Options::from_map(std::move(options))); },
          Options::spec().describe()};
}

}  // namespace hamlet
