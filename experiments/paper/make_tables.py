#!/usr/bin/python3
"""Builds results/paper/TABLES.md from the HDF5 run files of experiments/paper/run.sh.

Per task directory (quadratic, mnist_sigmoid, mnist_relu) it reads baselines.h5 (hand-designed optimizers, tuned
learning rates) and learned_seed<k>.h5 (learned optimizers meta-trained with seed k), all evaluated on the same
paired test problems. For a learned optimizer the per-problem final losses are averaged over the meta-training
seeds before the statistics are taken; the spread of the per-seed means is reported beside them.

Usage: /usr/bin/python3 experiments/paper/make_tables.py RESULTS_DIR "COMMAND"
"""
import glob
import math
import os
import sys

import h5py
import numpy as np

# METHODS.md §9.1 (OPT-ML paper, Tables A1-A3): mean over 100 runs of the loss at the last logged step.
PAPER = {
    "quadratic": {"adam": 0.41, "rmsprop": 0.76, "momentum": 0.33, "nag": 0.45, "lstm": 0.25, "phnn-paper": 0.23},
    "mnist_sigmoid": {"adam": 0.35, "rmsprop": 0.38, "momentum": 0.36, "nag": 0.33, "lstm": 0.29, "phnn-paper": 0.38},
    "mnist_relu": {"adam": 0.34, "rmsprop": 0.38, "momentum": 0.45, "nag": 0.61, "lstm": 2.31, "phnn-paper": 0.36},
}
TITLES = {
    "quadratic": "Table A1: 10-D random quadratic",
    "mnist_sigmoid": "Table A2: MNIST MLP 784-20-10, sigmoid",
    "mnist_relu": "Table A3: transfer to the ReLU MLP (learned optimizers trained on sigmoid, baselines re-tuned)",
}
LABELS = {"momentum": "SGD (momentum 0.9)", "phnn-paper": "HNN (phnn-paper)", "phnn": "phnn (structured, hamlet)",
          "lstm": "LSTM", "adam": "Adam", "rmsprop": "RMSprop", "nag": "NAG", "symplectic-euler": "symplectic Euler",
          "symplectic": "symplectic (energy-normalised)", "ecdsep": "ECDSep", "sgd": "SGD (plain)"}

# Paper's four classic baselines, then the Hamiltonian-inspired extras, then the learned optimizers.
ORDER = ["momentum", "nag", "adam", "rmsprop", "sgd", "symplectic-euler", "symplectic", "ecdsep", "lstm",
         "phnn-paper", "phnn"]


def mean_se(x):
    x = np.asarray(x, dtype=float)
    return x.mean(), (x.std(ddof=1) / math.sqrt(len(x)) if len(x) > 1 else 0.0)


def fmt(v):
    if not np.isfinite(v):
        return "diverged" if not np.isnan(v) else "nan"
    return f"{v:.3e}" if (v != 0 and (abs(v) < 1e-3 or abs(v) >= 1e4)) else f"{v:.3f}"


def load_task(task_dir):
    """Returns {method: dict(final=[N], mean_steps=[N], seeds=[per-seed final means], lr=str, params=str)}."""
    methods = {}
    base = os.path.join(task_dir, "baselines.h5")
    if os.path.exists(base):
        with h5py.File(base, "r") as f:
            for name in [n.decode() if isinstance(n, bytes) else n for n in f["method_names"][()]]:
                g = f["methods"][name]
                loss = g["loss"][()]
                opts = dict(kv.split("=", 1) for kv in g.attrs["options"].split(", ") if "=" in kv)
                methods[name] = dict(final=loss[:, -1], mean_steps=loss.mean(1), seeds=None, lr=opts.get("lr", ""),
                                     params="—")
    seeds = sorted(glob.glob(os.path.join(task_dir, "learned_seed*.h5")))
    per = {}
    for path in seeds:
        with h5py.File(path, "r") as f:
            for name in [n.decode() if isinstance(n, bytes) else n for n in f["method_names"][()]]:
                g = f["methods"][name]
                loss = g["loss"][()]
                opts = dict(kv.split("=", 1) for kv in g.attrs["options"].split(", ") if "=" in kv)
                per.setdefault(name, []).append((loss, opts))
    for name, runs in per.items():
        losses = np.stack([r[0] for r in runs])  # [seeds, N, K]
        avg = losses.mean(0)
        methods[name] = dict(final=avg[:, -1], mean_steps=avg.mean(1), seeds=[l[:, -1].mean() for l in losses],
                             lr="out_mul " + runs[0][1].get("out_mul", "?"), params=runs[0][1].get("num_params", "—"))
    return methods, len(seeds)


def table(task, methods, n_seeds):
    lines = [f"### {TITLES[task]}", ""]
    if not methods:
        return lines + ["(no runs)", ""]
    finite = {k: v for k, v in methods.items() if np.isfinite(v["final"]).all()}
    base_names = [k for k in finite if methods[k]["seeds"] is None]
    best = min(base_names or finite, key=lambda k: finite[k]["final"].mean())
    n = len(next(iter(methods.values()))["final"])
    lines += [f"{n} paired test problems, 100 steps. *final* = loss at the last logged step F(θ₉₉) (the paper's "
              f"metric). Learned optimizers: per-problem losses averaged over {n_seeds} meta-training seed(s); "
              f"*seeds* lists each seed's mean. Δ = paired difference of the final loss against the best "
              f"hand-designed row ({LABELS.get(best, best)}); **bold** Δ = beyond 2 SE. *paper* = the published "
              f"number (METHODS.md §9.1), one unpaired draw without error bars; *vs paper* = ours − paper, **bold** "
              f"when beyond 2 of our SEs.", "",
              "| method | lr / scale | final (mean ± SE) | median | mean over steps | seeds | Δ vs best baseline | paper "
              "| vs paper |",
              "|---|---|---|---|---|---|---|---|---|"]
    order = sorted(methods, key=lambda k: (ORDER.index(k) if k in ORDER else len(ORDER), k))
    for k in order:
        m = methods[k]
        fm, fse = mean_se(m["final"])
        sm, _ = mean_se(m["mean_steps"])
        med = float(np.median(m["final"]))
        seeds = "—" if m["seeds"] is None else " / ".join(fmt(s) for s in m["seeds"])
        if k == best:
            delta = "—"
        else:
            dm, dse = mean_se(m["final"] - methods[best]["final"])
            delta = f"{fmt(dm)} ± {fmt(dse)}"
            if np.isfinite(dm) and abs(dm) > 2 * dse:
                delta = f"**{delta}**"
        paper = PAPER[task].get(k)
        versus = "—"
        if paper is not None and np.isfinite(fm):
            versus = f"{fm - paper:+.3f}"
            if abs(fm - paper) > 2 * fse:
                versus = f"**{versus}**"
        lines.append(f"| {LABELS.get(k, k)} | {m['lr']} | {fmt(fm)} ± {fmt(fse)} | {fmt(med)} | {fmt(sm)} | {seeds} | "
                     f"{delta} | {'—' if paper is None else f'{paper:.2f}'} | {versus} |")
    learned = [k for k in order if methods[k]["seeds"] is not None]
    pairs = [(a, b) for i, a in enumerate(learned) for b in learned[i + 1:]]
    if pairs:
        lines += ["", "Learned optimizers against each other (paired difference of the final loss, row minus column "
                  "method; **bold** = beyond 2 SE):", "", "| pair | Δ (mean ± SE) |", "|---|---|"]
        for a, b in pairs:
            dm, dse = mean_se(methods[a]["final"] - methods[b]["final"])
            cell = f"{fmt(dm)} ± {fmt(dse)}"
            if np.isfinite(dm) and abs(dm) > 2 * dse:
                cell = f"**{cell}**"
            lines.append(f"| {LABELS.get(a, a)} − {LABELS.get(b, b)} | {cell} |")
    return lines + [""]


def main():
    results, command = sys.argv[1], sys.argv[2]
    out = ["# Paper reproduction: OPT-ML Tables A1–A3", "",
           f"Generated by `{command}` (experiments/paper/make_tables.py). Do not edit by hand.", ""]
    if "--quick" in command:
        out += ["**Quick budgets** (minutes, one meta-training seed, small meta-training): these tables show that the "
                "pipeline runs end to end, not what the methods can do. The full reproduction is in "
                "[full/TABLES.md](full/TABLES.md) and discussed in [README.md](README.md).", ""]
    for task in ["quadratic", "mnist_sigmoid", "mnist_relu"]:
        methods, n_seeds = load_task(os.path.join(results, task))
        out += table(task, methods, n_seeds)
    prov = os.path.join(results, "PROVENANCE.md")
    if os.path.exists(prov):
        out += ["## Provenance", "", open(prov).read().strip(), ""]
    tmp = os.path.join(results, "TABLES.md.tmp")
    with open(tmp, "w") as f:
        f.write("\n".join(out) + "\n")
    os.replace(tmp, os.path.join(results, "TABLES.md"))


if __name__ == "__main__":
    main()
