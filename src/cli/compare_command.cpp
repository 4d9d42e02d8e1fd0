// `hamlet compare`: the comparison tables of eval/compare.hpp from run files.
#include <spdlog/spdlog.h>

#include <iostream>

#include "commands.hpp"
#include "hamlet/cli/option_flags.hpp"
#include "hamlet/core/error.hpp"
#include "hamlet/core/output_file.hpp"
#include "hamlet/eval/compare.hpp"
#include "hamlet/eval/compare_format.hpp"
#include "hamlet/eval/drift.hpp"
#include "hamlet/eval/suite.hpp"
#include "hamlet/meta/meta_options.hpp"

namespace po = boost::program_options;

namespace hamlet::cli {
namespace {

std::map<std::string, double> parse_published(const std::string& text) {
  std::map<std::string, double> out;
  for (const auto& [name, value] : parse_option_list(text)) {
    const auto v = parse_number(value);
    HAMLET_CHECK(v, "--published: the value for '", name, "' is not a number: '", value, "'");
    out[name] = *v;
  }
  return out;
}

}  // namespace

int cmd_compare(const std::vector<std::string>& args) {
  po::options_description desc(
      "hamlet compare: comparison table of evaluate run files (docs/methods.md §12 statistics). A method found in several "
      "files is one learned optimizer with several meta-training seeds");
  desc.add_options()("in", po::value<std::vector<std::string>>()->composing(),
                     "run file (repeat --in for several; e.g. baselines.h5 and learned_seed0.h5 .. learned_seed4.h5); FILE:LABEL "
                     "renames the file's method to the row LABEL ({method} in LABEL stands for each method's name), "
                     "and files with the same label are that row's meta-training seeds")(
      "format", po::value<std::string>()->default_value("md"), "md | csv | json")(
      "out", po::value<std::string>()->default_value(""), "file to write (default: standard output)")(
      "published", po::value<std::string>()->default_value(""),
      "published numbers to test against, NAME=VALUE,... (e.g. adam=0.41,lstm=0.25)")(
      "mode", po::value<std::string>()->default_value("table"),
      "table | drift (exactly two --in: a committed run and its rerun, method by method: how far the rerun moved) | "
      "suite (no --in; --suite=FILE: per-task tables and the aggregate over the tasks, docs/methods.md §12)")(
      "threshold", po::value<double>()->default_value(0.05), "drift mode: count problems whose final loss moved more")(
      "suite", po::value<std::string>()->default_value(""),
      "suite mode: the suite file, one task a line: 'label | title | run files' (FILE or FILE:ROW, relative to "
      "the suite file; docs/file_formats.md)");
  add_option_flags(desc, eval::CompareOptions::spec().describe());
  add_option_flags(desc, eval::SuiteOptions::spec().describe());
  ParsedArgs parsed = parse_args(args, desc, {}, "compare");
  if (print_help_or_config(parsed, desc)) return 0;
  const auto& v = parsed.values;
  const std::string format = v["format"].as<std::string>(), mode = v["mode"].as<std::string>();
  HAMLET_CHECK(mode == "table" || mode == "drift" || mode == "suite", "--mode must be table, drift or suite, got '",
               mode, "'");
  const std::string suite_file = v["suite"].as<std::string>();
  if (mode == "suite") {
    HAMLET_CHECK(!v.count("in"), "compare --mode=suite reads its run files from --suite=FILE, not from --in");
    HAMLET_CHECK(!suite_file.empty(), "compare --mode=suite needs --suite=FILE (one task a line: label | title | run "
                 "files)");
  } else {
    HAMLET_CHECK(suite_file.empty(), "--suite is read in --mode=suite only");
    HAMLET_CHECK(v.count("in"), "hamlet compare needs at least one --in=RUN.h5");
  }
  const std::string out = v["out"].as<std::string>();
  if (!out.empty()) check_output_path(out, "--out");  // before reading any run file
  const auto emit = [&out](const std::string& text) {
    if (out.empty()) std::cout << text;
    else write_atomically(out, text);
  };
  if (mode == "suite") {
    HAMLET_CHECK(format == "md" || format == "json", "compare --mode=suite writes md or json, got '", format, "'");
    eval::CompareOptions o = options_from_flags<eval::CompareOptions>(parsed);
    HAMLET_CHECK(o.reference == "validation", "compare --mode=suite measures Δ against the validation choice and ",
                 "the normaliser (--normalizer), so --reference cannot be set, got '", o.reference, "'");
    o.protocol_defaults = {{"estimator", meta::EstimatorOptions().name}};
    const auto suite = eval::evaluate_suite(eval::read_suite_file(suite_file),
                                            options_from_flags<eval::SuiteOptions>(parsed), o);
    emit(format == "md" ? eval::to_markdown(suite) : eval::to_json(suite));
    if (!out.empty()) spdlog::info("wrote the suite of {} tasks to {}", suite.tasks.size(), out);
    return 0;
  }
  if (mode == "drift") {
    const auto inputs = v["in"].as<std::vector<std::string>>();
    HAMLET_CHECK(inputs.size() == 2, "compare --mode=drift takes exactly two --in (committed, rerun), got ",
                 inputs.size());
    HAMLET_CHECK(format == "md", "compare --mode=drift writes Markdown only (--format=md)");
    for (const auto& in : inputs) {
      HAMLET_CHECK(eval::parse_run_input(in).label.empty(), "compare --mode=drift pairs methods by their names, so --in='",
                   in, "' cannot carry a label");
    }
    emit(eval::to_markdown(eval::drift(inputs[0], inputs[1], v["threshold"].as<double>())));
    return 0;
  }
  HAMLET_CHECK(format == "md" || format == "csv" || format == "json", "--format must be md, csv or json, got '", format,
               "'");
  eval::CompareOptions o = options_from_flags<eval::CompareOptions>(parsed);
  // Weights meta-trained before the estimator option existed were trained by the default estimator.
  o.protocol_defaults = {{"estimator", meta::EstimatorOptions().name}};
  o.published = parse_published(v["published"].as<std::string>());
  std::vector<eval::RunInput> inputs;
  for (const auto& text : v["in"].as<std::vector<std::string>>()) inputs.push_back(eval::parse_run_input(text));
  const auto comparison = eval::compare(eval::read_runs(inputs), o);
  const std::string text = format == "md" ? eval::to_markdown(comparison)
                           : format == "csv" ? eval::to_csv(comparison)
                                             : eval::to_json(comparison);
  emit(text);
  if (!out.empty()) {
    spdlog::info("wrote the comparison of {} methods ({} reference) to {}", comparison.rows.size(),
                 comparison.reference, out);
  }
  return 0;
}

}  // namespace hamlet::cli
