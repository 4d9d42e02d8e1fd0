#!/usr/bin/python3
"""Draws results/estimators/estimators.png from the comparisons make_table.sh wrote (hamlet compare, JSON).

Only drawing: every mean and SE is read from comparison_<optimizer>_e<epochs>.json and comparison_untrained.json.
Usage: /usr/bin/python3 experiments/estimators/plot.py RESULTS_DIR
"""
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

out = sys.argv[1]
EPOCHS = [1, 3, 10]
STEPS_PER_EPOCH = 4000
NAMES = ["phnn", "lstm"]


def rows(path):
    with open(path) as f:
        return {r["method"]: r["final"] for r in json.load(f)["rows"]}


untrained = rows(os.path.join(out, "comparison_untrained.json"))
by_epochs = {(n, e): rows(os.path.join(out, f"comparison_{n}_e{e}.json")) for n in NAMES for e in EPOCHS}
fig, axes = plt.subplots(1, 2, figsize=(10, 4))
for ax, name in zip(axes, NAMES):
    # The estimators as the table names its rows ("phnn es"), in the table's order.
    estimators = [method[len(name) + 1:] for method in by_epochs[(name, EPOCHS[0])] if method.startswith(name + " ")]
    for est in estimators:
        points = [(0, untrained[f"{name} untrained"])] + [
            (e * STEPS_PER_EPOCH, by_epochs[(name, e)][f"{name} {est}"]) for e in EPOCHS]
        ax.errorbar([b for b, _ in points], [p["mean"] for _, p in points], yerr=[p["se"] for _, p in points],
                    marker="o", capsize=3, label=est)
    ax.set_title(f"{name} on the 10-D quadratic")
    ax.set_xlabel("meta-training budget (optimizee problem-steps)")
    ax.set_ylabel("test loss after 100 steps")
    ax.set_xscale("symlog", linthresh=STEPS_PER_EPOCH)
    ax.set_yscale("log")
    ax.legend()
fig.tight_layout()
fig.savefig(os.path.join(out, "estimators.png"), dpi=110)
