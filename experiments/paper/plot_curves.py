#!/usr/bin/python3
"""Learning-curve figures like the OPT-ML paper's Figs. 1-3: log-scale mean loss vs step, one line per method
with a ±1 SE band over paired problems. Reads every HDF5 run file given and writes one PNG.

Usage: /usr/bin/python3 experiments/paper/plot_curves.py OUT.png "TITLE" RUN.h5 [RUN.h5 ...]
Learned optimizers appearing in several files (one per meta-training seed) are averaged per problem first.
experiments/transfer/plot_transfer.py imports draw() for its multi-panel figure.
"""
import os
import sys

import h5py
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

LEARNED = {"phnn-paper", "phnn", "lstm", "mlp-lopt", "phnn-features"}
ORDER = ["momentum", "nag", "adam", "rmsprop", "sgd", "symplectic-euler", "symplectic", "ecdsep", "lstm", "mlp-lopt",
         "phnn-paper", "phnn", "phnn-features"]


def read_curves(files):
    """{method: [N, K] losses}, learned optimizers averaged per problem over the files (seeds) that hold them."""
    curves = {}
    for path in files:
        with h5py.File(path, "r") as f:
            for name in [n.decode() if isinstance(n, bytes) else n for n in f["method_names"][()]]:
                curves.setdefault(name, []).append(f["methods"][name]["loss"][()])
    order = sorted(curves, key=lambda k: (ORDER.index(k) if k in ORDER else len(ORDER), k))
    return {k: np.stack(curves[k]).mean(0) for k in order}


def draw(ax, files, title, legend=True):
    for name, loss in read_curves(files).items():
        mean = loss.mean(0)
        se = loss.std(0, ddof=1) / np.sqrt(loss.shape[0]) if loss.shape[0] > 1 else np.zeros_like(mean)
        steps = np.arange(loss.shape[1])
        learned = name in LEARNED
        line, = ax.plot(steps, mean, "-" if learned else "--", label=name, linewidth=2.0 if learned else 1.2)
        ax.fill_between(steps, np.clip(mean - se, 1e-12, None), mean + se, color=line.get_color(), alpha=0.2)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_title(title, fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    if legend:
        ax.legend(fontsize=7, ncol=2)


def save(fig, out):
    fig.tight_layout()
    tmp = out + ".tmp.png"
    fig.savefig(tmp)
    os.replace(tmp, out)


def main():
    out, title, files = sys.argv[1], sys.argv[2], sys.argv[3:]
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    draw(ax, files, title)
    ax.set_ylabel("loss (mean over paired problems, ±1 SE)")
    save(fig, out)


if __name__ == "__main__":
    main()
