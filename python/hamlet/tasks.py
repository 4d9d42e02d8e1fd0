"""hamlet's tasks and datasets from Python (mainly to compare with `hamlet evaluate` problem by problem)."""
from . import _C


def sample(task, split="test", seed=0, first=0, count=1, **options):
    """Problems [first, first + count) of (task, split, seed): an object with initial_params() (each [B, ...]),
    loss(params, step) (per-problem loss [B], differentiable) and param_names(). Problem i is the one
    `hamlet evaluate --task=TASK --seed=SEED --split=SPLIT` runs as its i-th problem."""
    return _C.sample_problems(task, {k: str(v) for k, v in options.items()}, split, seed, first, count)


def load_dataset(name, data_dir=""):
    """(images [N, 784] float32 in [0, 1], labels [N] int64, source) of "mnist", "fashion-mnist" or "idx"."""
    return _C.load_dataset(name, data_dir)
