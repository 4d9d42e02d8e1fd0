#pragma once
// Options plumbing shared by every configurable component.
//
// OptionMap is the untyped form in which options arrive from the command line or an INI file
// ("lr" -> "0.1"). Each component parses the keys it knows into its typed options struct, rejects unknown
// keys (listing the valid ones), and reports its resolved options back as an OptionMap so runs can record
// exactly what they used. Validation helpers name the field and the offending value.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace hamlet {

using OptionMap = std::map<std::string, std::string>;

// `text` without its leading and trailing blanks (spaces, tabs, carriage returns).
std::string trim(const std::string& text);

// Parses "k1=v1,k2=v2" (whitespace around items ignored). Throws on an item without '='.
OptionMap parse_option_list(const std::string& text);
// Renders an OptionMap as "k1=v1, k2=v2" for logs and HDF5 attributes.
std::string format_options(const OptionMap& options);

// Typed readers: take the value of `key` from `options` if present (and erase it from `options`),
// leaving `value` untouched otherwise. `owner` names the component in error messages, e.g. "adam".
void take_option(OptionMap& options, const std::string& owner, const std::string& key, double& value);
void take_option(OptionMap& options, const std::string& owner, const std::string& key, int64_t& value);
void take_option(OptionMap& options, const std::string& owner, const std::string& key, uint64_t& value);
void take_option(OptionMap& options, const std::string& owner, const std::string& key, bool& value);
void take_option(OptionMap& options, const std::string& owner, const std::string& key, std::string& value);
void take_option(OptionMap& options, const std::string& owner, const std::string& key, std::vector<int64_t>& value);
// Throws if `options` still holds keys after every known key was taken; lists `valid` keys.
void reject_unknown_options(const OptionMap& options, const std::string& owner, const std::vector<std::string>& valid);

// `text` read whole as a number (std::stod syntax: "0.1", "1e-3", "inf", "nan") or as a decimal integer; nullopt
// when it is empty, has anything after the number or is out of range.
std::optional<double> parse_number(const std::string& text);
std::optional<int64_t> parse_integer(const std::string& text);

// Formats a double so that it round-trips (shortest "%.17g"-style representation).
std::string format_number(double value);

// Validation helpers. `field` is the qualified name used in the message, e.g. "AdamOptions.lr".
void check_positive(const std::string& field, double value);
void check_non_negative(const std::string& field, double value);
void check_finite(const std::string& field, double value);
// lo <= value < hi (hi_inclusive selects <=).
void check_in_range(const std::string& field, double value, double lo, double hi, bool hi_inclusive = false);
void check_positive(const std::string& field, int64_t value);

}  // namespace hamlet
