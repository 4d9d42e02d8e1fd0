#!/usr/bin/python3
"""Learning-curve figures like the OPT-ML paper's Figs. 1-3: log-scale mean loss vs step, one line per method
with a ±1 SE band over paired problems. Reads every HDF5 run file given and writes one PNG.

Usage: /usr/bin/python3 experiments/paper/plot_curves.py OUT.png "TITLE" RUN.h5 [RUN.h5 ...]
Learned optimizers appearing in several files (one per meta-training seed) are averaged per problem first.
"""
import sys

import h5py
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def main():
    out, title, files = sys.argv[1], sys.argv[2], sys.argv[3:]
    curves = {}
    for path in files:
        with h5py.File(path, "r") as f:
            for name in [n.decode() if isinstance(n, bytes) else n for n in f["method_names"][()]]:
                curves.setdefault(name, []).append(f["methods"][name]["loss"][()])
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    for name, runs in curves.items():
        loss = np.stack(runs).mean(0)  # average over seeds: [N, K]
        mean = loss.mean(0)
        se = loss.std(0, ddof=1) / np.sqrt(loss.shape[0])
        steps = np.arange(loss.shape[1])
        style = "-" if len(runs) == 1 else "--"
        line, = ax.plot(steps, mean, style, label=name, linewidth=1.5)
        ax.fill_between(steps, np.clip(mean - se, 1e-12, None), mean + se, color=line.get_color(), alpha=0.2)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (mean over paired problems, ±1 SE)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    fig.savefig(out + ".tmp.png")
    import os
    os.replace(out + ".tmp.png", out)


if __name__ == "__main__":
    main()
