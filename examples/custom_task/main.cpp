// custom_task: brings a task of its own (csv_classifier.hpp: a small MLP classifier on the rows of a CSV file) to
// hamlet, meta-trains a learned optimizer on it and compares that optimizer with Adam on held-out problems, all
// through hamlet's installed library (docs/extending.md, "Bring your own task").
//
//   custom_task [--data=FILE.csv] [--optimizer=lstm] [--epochs=50] [--trajectories=8] [--steps=50] ...
//   custom_task --help     lists every flag with its default
//
// What it does, in order:
//   1. registers "csv-classifier" with hamlet::tasks::register_task and builds it with make_task, as hamlet's own
//      commands build theirs; the task's flags (--data, --hidden, --examples) are that task's options;
//   2. meta-trains the learned optimizer --optimizer (meta::meta_train: truncated BPTT, --epochs x --trajectories
//      episodes of --steps steps on train problems, the weights with the best validation score kept);
//   3. tunes Adam's learning rate on the validation problems (eval::tune_learning_rate, hamlet's default grid);
//   4. runs both for --steps steps on the same --problems test problems (eval::evaluate) and prints the final loss,
//      mean ± standard error over problems, their paired difference with hamlet's 2-SE verdict, and the learned
//      optimizer's validation score before and after meta-training.
//
// Exit status: 0 after the table; 2 for a bad flag or data file (one line saying what is wrong); 1 when the run
// itself fails. The defaults are a real run (about half a minute on one core); the ctest uses a smaller budget.
#include <cmath>
#include <cstdio>
#include <exception>
#include <set>
#include <string>
#include <vector>

#include "csv_classifier.hpp"
#include "hamlet/core/error.hpp"
#include "hamlet/core/option_spec.hpp"
#include "hamlet/eval/evaluate.hpp"
#include "hamlet/eval/statistics.hpp"
#include "hamlet/eval/tune.hpp"
#include "hamlet/learned/registry.hpp"
#include "hamlet/meta/meta_train.hpp"
#include "hamlet/optim/registry.hpp"
#include "hamlet/tasks/registry.hpp"

#ifndef CUSTOM_TASK_DEFAULT_DATA
#define CUSTOM_TASK_DEFAULT_DATA "two_moons.csv"  // CMakeLists.txt sets the absolute path of the shipped file
#endif

namespace {

using namespace hamlet;

// The program's own flags, declared with hamlet's option machinery: parsing, checks and --help come from spec().
struct ProgramOptions {
  std::string optimizer = "lstm";      // learned optimizer to meta-train (hamlet's learned registry)
  int64_t epochs = 50;                 // meta-training epochs
  int64_t trajectories = 8;            // training episodes per epoch
  int64_t steps = 50;                  // optimizer steps per episode, per validation and per test run
  int64_t unroll = 10;                 // truncation window of BPTT
  double meta_lr = 0.01;               // Adam's learning rate on the learned optimizer's weights
  int64_t problems = 100;              // test problems (paired: the same ones for both optimizers)
  int64_t validation_problems = 20;    // validation problems (meta-training selection and Adam's tuning)
  uint64_t seed = 0;                   // meta-training seed: the learned weights' initialisation and episodes
  HAMLET_OPTIONS(ProgramOptions);
};

const OptionSpec<ProgramOptions>& ProgramOptions::spec() {
  static const auto s =
      OptionSpec<ProgramOptions>("custom_task")
          .add("optimizer", &ProgramOptions::optimizer, "learned optimizer to meta-train",
               [](const std::string& field, const std::string& value) {
                 if (learned::is_learned(value)) return;
                 std::string valid;
                 for (const auto& n : learned::learned_names()) valid += (valid.empty() ? "" : ", ") + n;
                 throw Error(field + " is '" + value + "', not a learned optimizer; valid: " + valid);
               })
          .add("epochs", &ProgramOptions::epochs, "meta-training epochs", checks::positive)
          .add("trajectories", &ProgramOptions::trajectories, "meta-training episodes per epoch", checks::positive)
          .add("steps", &ProgramOptions::steps, "optimizer steps per episode, validation and test run",
               checks::positive)
          .add("unroll", &ProgramOptions::unroll, "truncation window of meta-training (BPTT)", checks::positive)
          .add("meta-lr", &ProgramOptions::meta_lr, "meta-training learning rate", checks::positive)
          .add("problems", &ProgramOptions::problems, "test problems", checks::positive)
          .add("validation-problems", &ProgramOptions::validation_problems, "validation problems", checks::positive)
          .add("seed", &ProgramOptions::seed, "meta-training seed")
          .rule([](const std::string& owner, const ProgramOptions& o) {
            HAMLET_CHECK(o.unroll <= o.steps, owner, ".unroll (", o.unroll, ") must not exceed ", owner, ".steps (",
                         o.steps, "): a window longer than an episode never ends");
          });
  return s;
}

struct Invocation {
  ProgramOptions program;
  OptionMap task;  // the task's options, for make_task
  bool help = false;
};

void print_flags(const std::vector<OptionInfo>& infos) {
  for (const auto& i : infos) {
    const std::string flag = "--" + i.key + "=" + option_kind_name(i.kind);
    // The task's data option has no default of its own; the program supplies the shipped file.
    const std::string fallback = i.key == "data" ? CUSTOM_TASK_DEFAULT_DATA : i.default_value;
    std::printf("  %-30s %s (default %s)\n", flag.c_str(), i.help.c_str(), fallback.c_str());
  }
}

// Every argument is --key=value; a key of the task's options goes to the task, any other to the program.
Invocation parse(int argc, char** argv) {
  Invocation inv;
  std::set<std::string> task_keys, program_keys;
  for (const auto& i : tasks::task_options("csv-classifier")) task_keys.insert(i.key);
  for (const auto& k : ProgramOptions::spec().keys()) program_keys.insert(k);
  OptionMap program;
  inv.task["data"] = CUSTOM_TASK_DEFAULT_DATA;
  for (int a = 1; a < argc; ++a) {
    const std::string arg = argv[a];
    if (arg == "--help" || arg == "-h") {
      inv.help = true;
      continue;
    }
    const auto eq = arg.find('=');
    HAMLET_CHECK(arg.rfind("--", 0) == 0 && eq != std::string::npos && eq > 2, "argument '", arg,
                 "' is not of the form --key=value (see --help)");
    const std::string key = arg.substr(2, eq - 2), value = arg.substr(eq + 1);
    if (task_keys.count(key)) {
      inv.task[key] = value;
    } else if (program_keys.count(key)) {
      program[key] = value;
    } else {
      std::string valid;
      for (const auto& k : task_keys) valid += " --" + k;
      for (const auto& k : ProgramOptions::spec().keys()) valid += " --" + k;
      throw Error("unknown flag --" + key + "; valid flags:" + valid + " --help");
    }
  }
  inv.program = ProgramOptions::from_map(program);  // parses and checks: "custom_task.epochs must be ..."
  return inv;
}

std::string mean_se(const eval::MeanSe& m) {
  char text[64];
  std::snprintf(text, sizeof text, "%.4f ± %.4f", m.mean, m.se);
  return text;
}

}  // namespace

int main(int argc, char** argv) {
  // Phase 1: everything the user gave (flags, the data file). A mistake here is bad input: one line, exit 2.
  Invocation inv;
  tasks::TaskPtr task;
  meta::MetaTrainOptions meta_options;
  try {
    custom_task::register_csv_classifier();
    inv = parse(argc, argv);
    if (inv.help) {
      std::printf("custom_task: meta-trains a learned optimizer on the csv-classifier task and compares it with Adam\n"
                  "(docs/extending.md, \"Bring your own task\"). Flags of the task:\n");
      print_flags(tasks::task_options("csv-classifier"));
      std::printf("Flags of the program:\n");
      print_flags(ProgramOptions::spec().describe());
      return 0;
    }
    // The registry builds the task from text options, as `hamlet evaluate --task=... --task.hidden=...` would.
    task = tasks::make_task("csv-classifier", inv.task);
    const ProgramOptions& p = inv.program;
    meta_options.schedule = meta::ScheduleOptions::from_map({{"epochs", std::to_string(p.epochs)},
                                                             {"trajectories", std::to_string(p.trajectories)},
                                                             {"horizon", std::to_string(p.steps)},
                                                             {"unroll", std::to_string(p.unroll)},
                                                             {"seed", std::to_string(p.seed)}});
    meta_options.meta_step.lr = p.meta_lr;
    meta_options.validation.problems = p.validation_problems;
    meta_options.progress = false;
    meta_options.validate();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "custom_task: error: %s\n", e.what());
    return 2;
  }

  // Phase 2: the run. An exception here is a failure of the run, not of the input: exit 1.
  try {
    const ProgramOptions& p = inv.program;
    const auto& csv = dynamic_cast<const custom_task::CsvClassifierTask&>(*task);
    const OptionMap task_options = task->options();
    std::printf("task csv-classifier: %s, %lld features -> %s tanh units -> 1 logit, %s rows per problem\n",
                task_options.at("data").c_str(), static_cast<long long>(csv.features()),
                task_options.at("hidden").c_str(), task_options.at("examples").c_str());
    std::printf("row pools: %lld train, %lld validation, %lld test\n",
                static_cast<long long>(csv.pool_size(tasks::Split::kTrain)),
                static_cast<long long>(csv.pool_size(tasks::Split::kValidation)),
                static_cast<long long>(csv.pool_size(tasks::Split::kTest)));

    // 2. Meta-training. At the end `learned` holds the weights with the best validation score.
    learned::LearnedOptimizerPtr learned = learned::make_learned(p.optimizer, {{"seed", std::to_string(p.seed)}});
    std::printf("\nmeta-training %s (%lld weights): %lld epochs x %lld episodes x %lld steps, unroll %lld\n",
                p.optimizer.c_str(), static_cast<long long>(learned->num_params()), static_cast<long long>(p.epochs),
                static_cast<long long>(p.trajectories), static_cast<long long>(p.steps),
                static_cast<long long>(p.unroll));
    const meta::MetaTrainResult trained = meta::meta_train(*learned, *task, meta_options);
    // About ten rows of the curve, the last epoch always among them.
    const int64_t every = (p.epochs + 9) / 10;
    std::printf("%6s %16s %18s\n", "epoch", "train meta-loss", "validation score");
    for (const auto& e : trained.curve) {
      if (e.epoch % every != 0 && e.epoch != p.epochs) continue;
      std::printf("%6lld %16.4f %18.4f\n", static_cast<long long>(e.epoch), e.train_meta_loss, e.validation_score);
    }

    // 3. Adam's learning rate, chosen on validation problems so that the comparison is with a tuned baseline.
    eval::EvaluateOptions validation;
    validation.steps = p.steps;
    validation.problems = p.validation_problems;
    validation.split = tasks::Split::kValidation;
    validation.progress = false;
    const auto make_adam = [](double lr) { return optim::make_optimizer("adam", {{"lr", format_number(lr)}}); };
    const eval::TuneResult tuned = eval::tune_learning_rate(*task, make_adam, eval::default_lr_grid(), validation);
    // The tuning score is the selection score of meta-training (mean loss over the steps on the same validation
    // problems), so the two numbers compare directly.
    std::printf("\nadam: learning rate %s chosen from %zu on the validation problems (validation score %.4f)\n",
                format_number(tuned.best_lr).c_str(), tuned.grid.size(), tuned.best_score);

    // 4. Both optimizers on the same test problems.
    eval::EvaluateOptions test;
    test.steps = p.steps;
    test.problems = p.problems;
    test.split = tasks::Split::kTest;
    test.progress = false;
    const eval::Trajectory adam = eval::evaluate(*task, *make_adam(tuned.best_lr), test);
    const eval::Trajectory mine = eval::evaluate(*task, *learned, test);
    // hamlet's table metric: the loss at the last logged step F(θ_{K−1}), one value per problem, [N].
    const at::Tensor adam_final = adam.loss.select(1, p.steps - 1), mine_final = mine.loss.select(1, p.steps - 1);
    const eval::MeanSe diff = eval::paired_difference(mine_final, adam_final);
    // In eval::Verdict's order (kABetter, kTie, kBBetter) with A the learned optimizer and B Adam.
    const char* verdict[] = {"the learned optimizer is better", "a tie (within 2 SE)", "Adam is better"};

    std::printf("\n%lld test problems, loss after %lld steps (mean ± SE over problems)\n",
                static_cast<long long>(p.problems), static_cast<long long>(p.steps));
    const std::string adam_name = "adam (lr " + format_number(tuned.best_lr) + ", tuned)";
    std::printf("  %-28s %s\n", "start (same for both)", mean_se(eval::mean_se(adam.loss.select(1, 0))).c_str());
    std::printf("  %-28s %s\n", adam_name.c_str(), mean_se(eval::mean_se(adam_final)).c_str());
    std::printf("  %-28s %s\n", (p.optimizer + " (meta-trained)").c_str(), mean_se(eval::mean_se(mine_final)).c_str());
    std::printf("  %-28s %s: %s\n", (p.optimizer + " - adam, paired").c_str(), mean_se(diff).c_str(),
                verdict[static_cast<int>(eval::verdict(diff.mean, diff.se))]);
    std::printf("meta-training: validation score %.4f -> %.4f (best epoch %lld of %lld): %s\n", trained.initial_score,
                trained.best_score, static_cast<long long>(trained.best_epoch), static_cast<long long>(p.epochs),
                trained.best_score < trained.initial_score ? "improved" : "not improved, the initial weights kept");
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "custom_task: error: %s\n", e.what());
    return 1;
  }
}
