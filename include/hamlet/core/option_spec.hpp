#pragma once
// Options declared once (docs/architecture.md, "Options").
//
// An options struct keeps its fields as plain members with their defaults and lists them once, in its spec():
// key, member, help and check. Everything else is generated from that list:
//   from_map    typed parsing of "key" -> "text" (command line, INI file, recorded files), unknown keys refused
//               with the valid ones listed, then validate();
//   to_map      the resolved options as text, recorded in run files and checkpoints;
//   validate    every field's check ("adam.lr must be a positive finite number, got -1"), then the struct's
//               cross-field rules;
//   describe    key, kind, default and help of each field: the command-line flags, their --help text and
//               docs/cli.md come from it (cli/option_flags.hpp).
//
//   struct AdamOptions {
//     double lr = 1e-3;
//     HAMLET_OPTIONS(AdamOptions);
//   };
//   const OptionSpec<AdamOptions>& AdamOptions::spec() {
//     static const auto s = OptionSpec<AdamOptions>("adam").add("lr", &AdamOptions::lr, "learning rate",
//                                                               checks::positive);
//     return s;
//   }
//
// A struct made of parts includes each part's fields with include(&Outer::part) (keys stay flat, messages name
// the outer owner), so a part is configured by its own options alone and the whole is still one list; a struct
// that derives from a part includes it with include_base<Part>().
#include <cmath>
#include <cstdint>
#include <functional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "hamlet/core/error.hpp"
#include "hamlet/core/options.hpp"

namespace hamlet {

// The value kinds an option can have; the command line and the docs name them.
enum class OptionKind { kBool, kInteger, kUnsigned, kNumber, kText, kIntegerList };
const char* option_kind_name(OptionKind kind);

// One field as the command line and the documentation see it.
struct OptionInfo {
  std::string key;            // "lr", "es.pairs"
  OptionKind kind = OptionKind::kText;
  std::string default_value;  // as to_map() renders it
  std::string help;
  std::vector<std::string> choices;  // the allowed values of a one_of field, else empty
  bool architecture = false;  // the value changes the meaning or shapes of a learned optimizer's weights
  bool omit_empty = false;    // to_map leaves the key out while its value is empty (provenance such as "weights")
};

namespace checks {

// Field checks: called with the qualified field name ("adam.lr") and the value; they throw hamlet::Error.
inline constexpr auto positive = [](const std::string& field, auto value) { check_positive(field, value); };
inline constexpr auto non_negative = [](const std::string& field, auto value) {
  if constexpr (std::is_floating_point_v<decltype(value)>) {
    check_non_negative(field, value);
  } else {
    HAMLET_CHECK(value >= 0, field, " must be >= 0, got ", value);
  }
};
inline constexpr auto finite = [](const std::string& field, double value) { check_finite(field, value); };
// lo <= value < hi (hi_inclusive: <= hi).
inline auto in_range(double lo, double hi, bool hi_inclusive = false) {
  return [=](const std::string& field, double value) { check_in_range(field, value, lo, hi, hi_inclusive); };
}
// value >= lo for a number.
inline auto at_least(double lo) {
  return [=](const std::string& field, double value) {
    HAMLET_CHECK(std::isfinite(value) && value >= lo, field, " must be a finite number >= ", format_number(lo),
                 ", got ", format_number(value));
  };
}
// A non-empty list of positive integers.
inline constexpr auto positive_list = [](const std::string& field, const std::vector<int64_t>& values) {
  HAMLET_CHECK(!values.empty(), field, " must list at least one value");
  for (const int64_t v : values) check_positive(field, v);
};
// One of a fixed set of words; the set also shows in --help and docs/cli.md.
struct OneOf {
  std::vector<std::string> values;
  void operator()(const std::string& field, const std::string& value) const;
};
inline OneOf one_of(std::vector<std::string> values) { return OneOf{std::move(values)}; }

}  // namespace checks

namespace detail {
// Text rendering of each option kind (the inverse of take_option).
inline std::string format_option(bool v) { return v ? "true" : "false"; }
inline std::string format_option(int64_t v) { return std::to_string(v); }
inline std::string format_option(uint64_t v) { return std::to_string(v); }
inline std::string format_option(double v) { return format_number(v); }
inline std::string format_option(const std::string& v) { return v; }
std::string format_option(const std::vector<int64_t>& v);

template <typename T>
constexpr OptionKind kind_of() {
  if constexpr (std::is_same_v<T, bool>) return OptionKind::kBool;
  if constexpr (std::is_same_v<T, int64_t>) return OptionKind::kInteger;
  if constexpr (std::is_same_v<T, uint64_t>) return OptionKind::kUnsigned;
  if constexpr (std::is_same_v<T, double>) return OptionKind::kNumber;
  if constexpr (std::is_same_v<T, std::string>) return OptionKind::kText;
  if constexpr (std::is_same_v<T, std::vector<int64_t>>) return OptionKind::kIntegerList;
}
}  // namespace detail

template <typename Options>
class OptionSpec {
 public:
  // `owner` prefixes field names in messages: "adam" -> "adam.lr must be ...".
  explicit OptionSpec(std::string owner) : owner_(std::move(owner)) {}

  // Declares field `key` stored in `member`, with its help text and an optional check.
  template <typename T, typename Check = std::nullptr_t>
  OptionSpec&& add(std::string key, T Options::*member, std::string help, Check check = nullptr) && {
    static_assert(detail::kind_of<T>() == detail::kind_of<T>(), "unsupported option type");
    Field f;
    f.info.key = key;
    f.info.kind = detail::kind_of<T>();
    f.info.help = std::move(help);
    if constexpr (std::is_same_v<Check, checks::OneOf>) f.info.choices = check.values;
    f.take = [key, member](OptionMap& map, const std::string& owner, Options& o) {
      take_option(map, owner, key, o.*member);
    };
    f.format = [member](const Options& o) { return detail::format_option(o.*member); };
    if constexpr (!std::is_same_v<Check, std::nullptr_t>) {
      f.check = [key, member, check](const std::string& owner, const Options& o) { check(owner + "." + key, o.*member); };
    }
    fields_.push_back(std::move(f));
    return std::move(*this);
  }

  // Declares field `key` of an enumeration (or any type) that is written as one of the words in `values`.
  template <typename T>
  OptionSpec&& add_choice(std::string key, T Options::*member, std::string help,
                          std::vector<std::pair<std::string, T>> values) && {
    Field f;
    f.info.key = key;
    f.info.kind = OptionKind::kText;
    f.info.help = std::move(help);
    for (const auto& v : values) f.info.choices.push_back(v.first);
    f.take = [key, member, values, words = f.info.choices](OptionMap& map, const std::string& owner, Options& o) {
      std::string word;
      const bool given = map.count(key) > 0;
      take_option(map, owner, key, word);
      if (!given) return;
      for (const auto& [name, value] : values) {
        if (name == word) {
          o.*member = value;
          return;
        }
      }
      checks::OneOf{words}(owner + "." + key, word);
    };
    f.format = [member, values](const Options& o) {
      for (const auto& [name, value] : values) {
        if (value == o.*member) return name;
      }
      return std::string("?");
    };
    fields_.push_back(std::move(f));
    return std::move(*this);
  }

  // Marks the field added last: it defines a learned optimizer's architecture (a loaded weight file must agree).
  OptionSpec&& architecture() && {
    fields_.back().info.architecture = true;
    return std::move(*this);
  }
  // Marks the field added last: to_map leaves it out while it is empty.
  OptionSpec&& omit_when_empty() && {
    fields_.back().info.omit_empty = true;
    return std::move(*this);
  }

  // A check over several fields, run after the field checks; it receives the owner for its messages.
  OptionSpec&& rule(std::function<void(const std::string& owner, const Options&)> check) && {
    rules_.push_back(std::move(check));
    return std::move(*this);
  }

  // Every field and rule of the part `member` (whose type has its own spec()), under the same flat keys.
  template <typename Part>
  OptionSpec&& include(Part Options::*member) && {
    return std::move(*this).template include_part<Part>([member](auto& o) -> auto& { return o.*member; });
  }
  // The same for a base struct of Options: its fields read as the derived struct's own (o.dataset, not o.data.dataset).
  template <typename Part>
  OptionSpec&& include_base() && {
    static_assert(std::is_base_of_v<Part, Options>, "include_base: Part must be a base of Options");
    return std::move(*this).template include_part<Part>([](auto& o) -> auto& {
      return static_cast<std::conditional_t<std::is_const_v<std::remove_reference_t<decltype(o)>>, const Part&,
                                            Part&>>(o);
    });
  }

  const std::string& owner() const { return owner_; }

  std::vector<std::string> keys() const {
    std::vector<std::string> out;
    for (const auto& f : fields_) out.push_back(f.info.key);
    return out;
  }

  std::vector<std::string> architecture_keys() const {
    std::vector<std::string> out;
    for (const auto& f : fields_) {
      if (f.info.architecture) out.push_back(f.info.key);
    }
    return out;
  }

  // Field checks in declaration order, then the rules.
  void validate(const Options& o) const {
    for (const auto& f : fields_) {
      if (f.check) f.check(owner_, o);
    }
    for (const auto& r : rules_) r(owner_, o);
  }

  OptionMap to_map(const Options& o) const {
    OptionMap out;
    for (const auto& f : fields_) {
      std::string value = f.format(o);
      if (!value.empty() || !f.info.omit_empty) out[f.info.key] = std::move(value);
    }
    return out;
  }

  // Unset keys keep their values in `start` (the defaults unless given).
  Options from_map(OptionMap map, Options start = Options()) const {
    for (const auto& f : fields_) f.take(map, owner_, start);
    reject_unknown_options(map, owner_, keys());
    validate(start);
    return start;
  }

  std::vector<OptionInfo> describe(const Options& defaults = Options()) const {
    std::vector<OptionInfo> out;
    for (const auto& f : fields_) {
      OptionInfo info = f.info;
      info.default_value = f.format(defaults);
      out.push_back(std::move(info));
    }
    return out;
  }

  struct Field {
    OptionInfo info;
    std::function<void(OptionMap&, const std::string&, Options&)> take;
    std::function<std::string(const Options&)> format;
    std::function<void(const std::string&, const Options&)> check;
  };
  const std::vector<Field>& fields() const { return fields_; }
  const std::vector<std::function<void(const std::string&, const Options&)>>& rules() const { return rules_; }

 private:
  // Copies Part's fields and rules, reaching the part of an Options through `part_of` (Options& -> Part&, and the
  // same for const).
  template <typename Part, typename PartOf>
  OptionSpec&& include_part(PartOf part_of) && {
    const OptionSpec<Part>& part = Part::spec();
    for (const auto& pf : part.fields()) {
      Field f;
      f.info = pf.info;
      f.take = [part_of, take = pf.take](OptionMap& map, const std::string& owner, Options& o) {
        take(map, owner, part_of(o));
      };
      f.format = [part_of, format = pf.format](const Options& o) { return format(part_of(o)); };
      if (pf.check) {
        f.check = [part_of, check = pf.check](const std::string& owner, const Options& o) { check(owner, part_of(o)); };
      }
      fields_.push_back(std::move(f));
    }
    for (const auto& r : part.rules()) {
      rules_.push_back([part_of, r](const std::string& owner, const Options& o) { r(owner, part_of(o)); });
    }
    return std::move(*this);
  }

  std::string owner_;
  std::vector<Field> fields_;
  std::vector<std::function<void(const std::string&, const Options&)>> rules_;
};

// `options` after its validate(): for member initialisers that must refuse bad options before using them.
template <typename Options>
Options validated(Options options) {
  options.validate();
  return options;
}

}  // namespace hamlet

// Declares spec() (defined in the struct's .cpp) and the members generated from it, inside an options struct.
#define HAMLET_OPTIONS(Type)                                                                     \
  static const ::hamlet::OptionSpec<Type>& spec();                                               \
  void validate() const { spec().validate(*this); }                                              \
  ::hamlet::OptionMap to_map() const { return spec().to_map(*this); }                            \
  static Type from_map(::hamlet::OptionMap options) { return spec().from_map(std::move(options), Type()); } \
  static Type from_map(::hamlet::OptionMap options, const Type& start) {                         \
    return spec().from_map(std::move(options), start);                                          \
  }
