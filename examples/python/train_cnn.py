#!/usr/bin/env python3
"""A PyTorch CNN on Fashion-MNIST trained with a hamlet learned optimizer and with torch.optim.Adam, from the same
initialisation and on the same minibatches; prints both learning curves and the held-out accuracy.

    PYTHONPATH=build/python /usr/bin/python3 examples/python/train_cnn.py [--steps 300] [--weights FILE]

The learned optimizer is one of hamlet's committed weight files (default: the LSTM meta-trained on the MNIST MLP of
Table A2, seed 0); it has never seen a convolution or Fashion-MNIST. Adam runs at its usual default lr = 1e-3 and at
the lr hamlet's tuner picks most often on the MLP tasks (3e-3); nothing is tuned here.
"""
import argparse
import pathlib
import time

import torch

import hamlet

ROOT = pathlib.Path(__file__).resolve().parents[2]


def make_cnn(seed):
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(8, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(16 * 7 * 7, 10))


def accuracy(model, images, labels):
    with torch.no_grad():
        return (model(images).argmax(1) == labels).float().mean().item()


def train(model, optimizer, images, labels, batches, log_every):
    curve = []
    for step, index in enumerate(batches):
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(images[index]), labels[index])
        loss.backward()
        optimizer.step()
        if step % log_every == 0 or step == len(batches) - 1:
            curve.append((step, loss.item()))
    return curve


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--weights", default=str(ROOT / "results/paper/full/weights/mnist_sigmoid_lstm_seed0.h5"))
    args = parser.parse_args()
    torch.set_num_threads(1)

    images, labels, source = hamlet.tasks.load_dataset("fashion-mnist")
    images = images.reshape(-1, 1, 28, 28)
    train_images, train_labels = images[:50000], labels[:50000]
    held_images, held_labels = images[50000:], labels[50000:]
    g = torch.Generator().manual_seed(args.seed)
    batches = [torch.randint(0, len(train_images), (args.batch,), generator=g) for _ in range(args.steps)]
    print(f"Fashion-MNIST from {source}: {len(train_images)} training, {len(held_images)} held-out images; "
          f"{args.steps} steps of {args.batch}; CNN with {sum(p.numel() for p in make_cnn(0).parameters())} "
          f"parameters")

    runs = {
        f"hamlet {pathlib.Path(args.weights).stem}": lambda p: hamlet.optim.Optimizer(p, weights=args.weights),
        "torch Adam lr=1e-3": lambda p: torch.optim.Adam(p, lr=1e-3),
        "torch Adam lr=3e-3": lambda p: torch.optim.Adam(p, lr=3e-3),
    }
    log_every = max(1, args.steps // 10)
    results = {}
    for name, make in runs.items():
        model = make_cnn(args.seed)  # the same initialisation for every optimizer
        start = time.perf_counter()
        curve = train(model, make(model.parameters()), train_images, train_labels, batches, log_every)
        results[name] = (curve, accuracy(model, held_images, held_labels), time.perf_counter() - start)

    names = list(results)
    print("\n| step | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    for i, (step, _) in enumerate(results[names[0]][0]):
        print(f"| {step} | " + " | ".join(f"{results[n][0][i][1]:.4f}" for n in names) + " |")
    print("\n| optimizer | held-out accuracy | seconds |\n|---|---|---|")
    for n in names:
        print(f"| {n} | {results[n][1]:.4f} | {results[n][2]:.1f} |")


if __name__ == "__main__":
    main()
