#!/usr/bin/python3
"""Draws budget.png of a budget-study directory from comparison.json, which make_table.sh wrote (hamlet compare).

Only drawing: every mean and SE is read from comparison.json. A row "NAME (N traj.)" is NAME meta-trained with N
problem-trajectories; the other learned rows are the committed full reproduction, whose budget (B = 1 problem per
episode, so episodes = trajectories) is in their protocol column.
Usage: /usr/bin/python3 experiments/budget/plot.py STUDY_DIR
"""
import json
import os
import re
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

BASELINES = ["nag", "adam"]  # drawn as horizontal bands: the validation-chosen reference and the usual default


def budget_of(row):
    """(optimizer, trajectories) of a learned row."""
    m = re.fullmatch(r"(.*) \((\d+) traj\.\)", row["method"])
    if m:
        return m.group(1), int(m.group(2))
    m = re.search(r"budget (\d+) trajectories", row["protocol"])
    if not m:
        raise SystemExit(f"plot.py: no budget for row '{row['method']}' (protocol '{row['protocol']}')")
    return row["method"], int(m.group(1))


def main():
    out = sys.argv[1]
    with open(os.path.join(out, "comparison.json")) as f:
        table = json.load(f)
    curves = {}
    for row in table["rows"]:
        if row["learned"]:
            name, n = budget_of(row)
            curves.setdefault(name, []).append((n, row["final"]["mean"], row["final"]["se"], row["final"]["seeds"]))
    fig, ax = plt.subplots(figsize=(7.5, 4.8), dpi=110)
    budgets = sorted({n for points in curves.values() for n, *_ in points})
    for row in table["rows"]:
        if row["method"] in BASELINES:
            mean, se = row["final"]["mean"], row["final"]["se"]
            line = ax.axhline(mean, linestyle="--", linewidth=1, color="black" if row["method"] == "nag" else "gray")
            ax.axhspan(mean - 2 * se, mean + 2 * se, alpha=0.12, color=line.get_color())
            ax.annotate(f"{row['method']} (tuned)", (budgets[0], mean), textcoords="offset points", xytext=(0, 3),
                        fontsize=8, color=line.get_color())
    for k, (name, points) in enumerate(sorted(curves.items())):
        points.sort()
        shift = 1.04 ** (k - (len(curves) - 1) / 2)  # side by side at a shared budget, so the error bars stay apart
        ax.errorbar([p[0] * shift for p in points], [p[1] for p in points], yerr=[2 * p[2] for p in points],
                    marker="o", capsize=3, label=name)
        for n, mean, _, seeds in points:
            ax.annotate(str(seeds), (n * shift, mean), textcoords="offset points", xytext=(4, -10), fontsize=7)
    ax.set_xscale("log")
    ax.set_xticks(budgets)
    ax.set_xticklabels([str(b) for b in budgets])
    ax.set_xlabel("meta-training budget (problem-trajectories of T = 100 steps)")
    ax.set_ylabel("final test loss (Table A2 problems)")
    ax.set_title("MNIST sigmoid MLP: test loss against meta-training budget\n"
                 "mean ± 2 two-level SE (seeds and problems); small numbers: meta-training seeds", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "budget.png"))


if __name__ == "__main__":
    main()
