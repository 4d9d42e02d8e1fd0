"""Shared fixtures: the repository, the hamlet executable next to the built package, a small regression model."""
import importlib.util
import os
import pathlib
import subprocess

ROOT = pathlib.Path(__file__).resolve().parents[2]


def hamlet_binary():
    if os.environ.get("HAMLET_BIN"):
        return os.environ["HAMLET_BIN"]
    # <build>/python/hamlet/__init__.py -> <build>/hamlet
    return str(pathlib.Path(importlib.util.find_spec("hamlet").origin).resolve().parents[2] / "hamlet")


import pytest
import torch


def run_hamlet(*args):
    result = subprocess.run([hamlet_binary(), *args], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result


def make_model(seed):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2)).double()


@pytest.fixture
def regression():
    g = torch.Generator().manual_seed(7)
    x = torch.randn(32, 4, generator=g, dtype=torch.float64)
    y = torch.randn(32, 2, generator=g, dtype=torch.float64)
    return x, y


def train(model, optimizer, data, steps, closure_loss=False):
    x, y = data
    losses = []
    for _ in range(steps):
        def closure():
            optimizer.zero_grad()
            loss = torch.nn.functional.mse_loss(model(x), y)
            loss.backward()
            return loss
        if closure_loss:
            losses.append(float(optimizer.step(closure)))
        else:
            losses.append(float(closure()))
            optimizer.step()
    return losses


def require_hamlets_blas_kernels():
    """Skips a bitwise comparison with the hamlet executable unless this process uses the OpenBLAS kernels hamlet
    picks (it re-executes itself with OPENBLAS_CORETYPE where Debian's OpenBLAS falls back to generic kernels; the
    variable acts only before OpenBLAS loads, so it must be set when Python starts, as scripts/test.sh does)."""
    core = subprocess.run([hamlet_binary(), "version", "--blas-core"], capture_output=True, text=True).stdout.strip()
    if core and os.environ.get("OPENBLAS_CORETYPE") != core:
        pytest.skip(f"bitwise comparison needs OPENBLAS_CORETYPE={core} (scripts/test.sh sets it)")
