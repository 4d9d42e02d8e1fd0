#!/usr/bin/python3
"""Draws transfer.png (one learning-curve panel per target) from the run files of experiments/transfer/run.sh.
Only a figure: the table, TABLE.md, is computed by `hamlet compare` (experiments/transfer/make_table.sh).

Usage: /usr/bin/python3 experiments/transfer/plot_transfer.py RESULTS_DIR
"""
import glob
import math
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "paper"))
from plot_curves import draw, save  # noqa: E402

def targets():
    """(label, title) of every target of experiments/transfer/targets.txt, the training task first."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "targets.txt")
    rows = []
    with open(path) as f:
        for line in f:
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            fields = [x.strip() for x in line.split("|")]
            rows.append((fields[0], fields[3]))
    return sorted(rows, key=lambda r: r[0] != "sigmoid")


def main():
    results = sys.argv[1]
    present = [(k, t) for k, t in targets() if os.path.isdir(os.path.join(results, k))]
    cols = 3
    rows = math.ceil(len(present) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.3 * rows), dpi=110, squeeze=False)
    for i, (key, title) in enumerate(present):
        # baselines.h5, then the learned optimizers (learned.h5 of older runs, learned_<name>.h5).
        files = [os.path.join(results, key, "baselines.h5")]
        files += sorted(glob.glob(os.path.join(results, key, "learned*.h5")))
        draw(axes[i // cols][i % cols], [f for f in files if os.path.exists(f)], title, legend=(i == 0))
    for j in range(len(present), rows * cols):
        axes[j // cols][j % cols].axis("off")
    fig.suptitle("Optimizers meta-trained on the MNIST sigmoid MLP: mean loss ± 1 SE over paired problems")
    save(fig, os.path.join(results, "transfer.png"))


if __name__ == "__main__":
    main()
