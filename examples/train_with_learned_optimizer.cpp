// Trains a LibTorch MLP (784-20-10, sigmoid, cross-entropy; the architecture hamlet's MNIST optimizers are
// meta-trained on) on Fashion-MNIST twice from the same initialisation and the same minibatches: once with a
// learned hamlet optimizer loaded from a weight file through hamlet::interop::TorchOptimizer, once with
// torch::optim::Adam. Prints both learning curves and the held-out loss and accuracy, and writes the curves as CSV.
//
//   train_with_learned_optimizer --weights=FILE.h5 [--steps=300] [--adam-lr=0.03] [--batch=128] [--seed=0]
//                                [--csv=curves.csv] [--print-every=25]
//
// Data: Debian's dataset-fashion-mnist (/usr/share/datasets/fashion-mnist), loaded with hamlet's IDX reader; the
// first 50,000 training images train, the last 10,000 are held out.
#include <torch/torch.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "hamlet/data/dataset.hpp"
#include "hamlet/interop/torch_optimizer.hpp"

namespace {

struct Args {
  std::string weights, csv = "curves.csv";
  int64_t steps = 300, batch = 128, seed = 0, print_every = 25;
  double adam_lr = 0.03;
};

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const auto eq = arg.find('=');
    const std::string key = arg.substr(0, eq), value = eq == std::string::npos ? "" : arg.substr(eq + 1);
    if (key == "--weights") a.weights = value;
    else if (key == "--csv") a.csv = value;
    else if (key == "--steps") a.steps = std::stoll(value);
    else if (key == "--batch") a.batch = std::stoll(value);
    else if (key == "--seed") a.seed = std::stoll(value);
    else if (key == "--print-every") a.print_every = std::stoll(value);
    else if (key == "--adam-lr") a.adam_lr = std::stod(value);
    else throw std::runtime_error("unknown argument '" + arg + "' (see the comment at the top of the source)");
  }
  if (a.weights.empty()) throw std::runtime_error("--weights=FILE.h5 (a learned optimizer's weight file) is required");
  if (a.steps <= 0 || a.batch <= 0 || a.print_every <= 0) throw std::runtime_error("--steps, --batch and --print-every must be > 0");
  return a;
}

torch::nn::Sequential make_model(int64_t seed) {
  torch::manual_seed(seed);  // the same initial weights for both runs
  return torch::nn::Sequential(torch::nn::Linear(784, 20), torch::nn::Sigmoid(), torch::nn::Linear(20, 10));
}

struct Curve {
  std::vector<double> loss;  // training minibatch loss before each update
  double test_loss = 0, test_accuracy = 0;
};

Curve train(torch::nn::Sequential model, torch::optim::Optimizer& opt, const at::Tensor& images,
            const at::Tensor& labels, const at::Tensor& order, const at::Tensor& test_x, const at::Tensor& test_y,
            const Args& a) {
  Curve c;
  for (int64_t t = 0; t < a.steps; ++t) {
    const int64_t n = images.size(0), first = (t * a.batch) % (n - a.batch + 1);
    const at::Tensor idx = order.slice(0, first, first + a.batch);
    const at::Tensor x = images.index_select(0, idx), y = labels.index_select(0, idx);
    auto closure = [&] {
      opt.zero_grad();
      at::Tensor loss = torch::nn::functional::cross_entropy(model->forward(x), y);
      loss.backward();
      return loss;
    };
    c.loss.push_back(opt.step(closure).item<double>());
  }
  torch::NoGradGuard no_grad;
  const at::Tensor logits = model->forward(test_x);
  c.test_loss = torch::nn::functional::cross_entropy(logits, test_y).item<double>();
  c.test_accuracy = logits.argmax(1).eq(test_y).to(at::kDouble).mean().item<double>();
  return c;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const Args a = parse(argc, argv);
    const hamlet::data::Dataset fashion = hamlet::data::load_dataset("fashion-mnist");
    const int64_t n_train = fashion.size() - 10000;
    const at::Tensor images = fashion.images.slice(0, 0, n_train), labels = fashion.labels.slice(0, 0, n_train);
    const at::Tensor test_x = fashion.images.slice(0, n_train), test_y = fashion.labels.slice(0, n_train);
    at::Generator generator = at::detail::createCPUGenerator(static_cast<uint64_t>(a.seed));
    const at::Tensor order = torch::randperm(n_train, generator);
    std::printf("Fashion-MNIST: %lld training images, %lld held out (%s)\n", static_cast<long long>(n_train),
                static_cast<long long>(test_x.size(0)), fashion.source.c_str());

    auto learned_model = make_model(a.seed);
    hamlet::interop::TorchOptimizer learned(learned_model->parameters(),
                                            hamlet::interop::TorchOptimizerOptions::from_weights(a.weights));
    const std::string learned_name = learned.algorithm().name();
    std::printf("learned optimizer: %s from %s (out_mul %g)\n", learned_name.c_str(), a.weights.c_str(),
                learned.algorithm().learning_rate());
    const Curve ours = train(learned_model, learned, images, labels, order, test_x, test_y, a);

    auto adam_model = make_model(a.seed);
    torch::optim::Adam adam(adam_model->parameters(), torch::optim::AdamOptions(a.adam_lr));
    const Curve theirs = train(adam_model, adam, images, labels, order, test_x, test_y, a);

    std::printf("%8s %12s %12s\n", "step", learned_name.c_str(), "adam");
    for (int64_t t = 0; t < a.steps; ++t) {
      if (t % a.print_every == 0 || t == a.steps - 1) {
        std::printf("%8lld %12.4f %12.4f\n", static_cast<long long>(t), ours.loss[t], theirs.loss[t]);
      }
    }
    std::printf("held-out loss / accuracy after %lld steps: %s %.4f / %.4f, adam (lr %g) %.4f / %.4f\n",
                static_cast<long long>(a.steps), learned_name.c_str(), ours.test_loss, ours.test_accuracy,
                a.adam_lr, theirs.test_loss, theirs.test_accuracy);

    const std::string tmp = a.csv + ".tmp";
    {
      std::ofstream out(tmp);
      out << "step," << learned_name << ",adam\n";
      for (int64_t t = 0; t < a.steps; ++t) out << t << ',' << ours.loss[t] << ',' << theirs.loss[t] << '\n';
      if (!out) throw std::runtime_error("cannot write " + tmp);
    }
    if (std::rename(tmp.c_str(), a.csv.c_str()) != 0) throw std::runtime_error("cannot rename " + tmp + " to " + a.csv);
    std::printf("curves written to %s\n", a.csv.c_str());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "train_with_learned_optimizer: error: %s\n", e.what());
    return 2;
  }
}
