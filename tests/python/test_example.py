import os
import subprocess
import sys

from conftest import ROOT


def test_the_cnn_example_runs_with_a_short_budget():
    env = dict(os.environ)
    result = subprocess.run([sys.executable, str(ROOT / "examples/python/train_cnn.py"), "--steps", "20"],
                            capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    assert "held-out accuracy" in result.stdout
    assert "hamlet mnist_sigmoid_lstm_seed0" in result.stdout
