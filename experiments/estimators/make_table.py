#!/usr/bin/python3
"""Builds results/estimators/TABLE.md and estimators.png from the run files of experiments/estimators/run.sh.

Every loss is read from the HDF5 files hamlet wrote (evaluate: final_mean, the mean over the 100 test problems of
the loss after 100 steps; meta-train: optimizee_steps and seconds of each call). The only arithmetic here is the
mean and standard error over the 3 meta-training seeds and the sum of the calls' budgets.

Usage: /usr/bin/python3 experiments/estimators/make_table.py RESULTS_DIR
"""
import math
import os
import sys

import h5py
import numpy as np

out = sys.argv[1]
EPOCHS = [1, 3, 10]
SEEDS = [0, 1, 2]
NAMES = ["phnn", "lstm"]
ESTIMATORS = ["bptt", "es", "pes"]


def final_mean(path, name):
    with h5py.File(path, "r") as f:
        return float(f["methods"][name].attrs["final_mean"])


def meta_attr(path, key):
    with h5py.File(path, "r") as f:
        return float(f["meta_train"].attrs[key])


def mean_se(x):
    x = np.asarray(x, dtype=float)
    return x.mean(), x.std(ddof=1) / math.sqrt(len(x))


def fmt(m, s):
    return f"{m:.3f} ± {s:.3f}"


rows, curves = [], {}
for name in NAMES:
    init = [final_mean(os.path.join(out, "eval", f"{name}_init_seed{s}.h5"), name) for s in SEEDS]
    for est in ESTIMATORS:
        cells, budgets, seconds, cut, skipped = [], [], 0.0, 0, 0
        curve = [(0, *mean_se(init))]
        for e in EPOCHS:
            vals, steps = [], []
            for s in SEEDS:
                tag = f"{name}_{est}_seed{s}"
                vals.append(final_mean(os.path.join(out, "eval", f"{tag}_e{e}.h5"), name))
                steps.append(sum(meta_attr(os.path.join(out, "meta", f"{tag}_e{k}.h5"), "optimizee_steps")
                                 for k in EPOCHS if k <= e))
                if e == EPOCHS[-1]:
                    for k in EPOCHS:
                        p = os.path.join(out, "meta", f"{tag}_e{k}.h5")
                        seconds += meta_attr(p, "seconds")
                        cut += int(meta_attr(p, "cut_trajectories")) if k == EPOCHS[-1] else 0  # cumulative
            m, se = mean_se(vals)
            budgets.append(int(np.mean(steps)))
            cells.append(fmt(m, se) + " (" + ", ".join(f"{v:.3f}" for v in vals) + ")")
            curve.append((budgets[-1], m, se))
        curves[(name, est)] = curve
        rows.append((name, est, fmt(*mean_se(init)), cells, budgets, seconds / len(SEEDS), cut))

with open(os.path.join(out, "TABLE.md"), "w") as f:
    f.write("# Meta-gradient estimators at equal optimizee-step budgets (10-D quadratic)\n\n")
    f.write("Test loss after 100 steps (mean over 100 paired test problems), of the weights selected on 20 validation "
            "problems, mean ± SE over 3 meta-training seeds (per-seed values in brackets). Budget = optimizee "
            "problem-steps spent in meta-training (every perturbed trajectory counted).\n\n")
    nominal = [4000 * e for e in EPOCHS]
    f.write("| optimizer | estimator | untrained | " + " | ".join(f"{e} epoch(s), {b:,} steps" for e, b in zip(EPOCHS, nominal)) +
            " | measured steps (mean over seeds) | meta-train s per seed | trajectories cut (3 seeds) |\n")
    f.write("|---|---|---|" + "---|" * len(nominal) + "---|---|---|\n")
    for name, est, init, cells, b, sec, cut in rows:
        f.write(f"| {name} | {est} | {init} | " + " | ".join(cells) + " | " + " / ".join(f"{x:,}" for x in b) +
                f" | {sec:.0f} | {cut} |\n")
    f.write("\n## Provenance\n\n")
    with open(os.path.join(out, "PROVENANCE.md")) as p:
        f.write(p.read())

try:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, name in zip(axes, NAMES):
        for est in ESTIMATORS:
            c = np.array(curves[(name, est)])
            ax.errorbar(c[:, 0], c[:, 1], yerr=c[:, 2], marker="o", capsize=3, label=est)
        ax.set_title(f"{name} on the 10-D quadratic")
        ax.set_xlabel("meta-training budget (optimizee problem-steps)")
        ax.set_ylabel("test loss after 100 steps")
        ax.set_xscale("symlog", linthresh=4000)
        ax.set_yscale("log")
        ax.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(out, "estimators.png"), dpi=110)
except ImportError:
    pass
