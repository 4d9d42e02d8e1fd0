"""hamlet from Python: hamlet's optimizers as torch.optim optimizers, run files as numpy, comparison tables.

    import hamlet
    opt = hamlet.optim.Optimizer(model.parameters(), "adam", lr=0.03)
    opt = hamlet.optim.Optimizer(model.parameters(), weights="results/paper/full/weights/mnist_sigmoid_lstm_seed0.h5")
    run = hamlet.runs.load("run.h5")                  # numpy arrays and parsed options
    table = hamlet.compare(["baselines.h5", "learned.h5"])

See docs/python.md.
"""
import torch  # noqa: F401  (loads libtorch and registers the tensor type before the extension)

from . import _C
from . import optim, runs, tasks
from ._C import Error
from .runs import compare

__all__ = ["optim", "runs", "tasks", "compare", "Error", "hand_designed_names", "learned_names", "task_names"]


def hand_designed_names():
    """Registry names of hamlet's hand-designed optimizers."""
    return list(_C.hand_designed_names())


def learned_names():
    """Registry names of hamlet's learned optimizers."""
    return list(_C.learned_names())


def task_names():
    """Registry names of hamlet's tasks."""
    return list(_C.task_names())
