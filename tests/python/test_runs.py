import json

import h5py
import numpy as np
import pytest

import hamlet
from conftest import ROOT, run_hamlet

def committed_run():
    """A committed evaluate run file with JSON options (written after 2026-12-01), tuned if there is one."""
    for path in sorted((ROOT / "results").rglob("*.h5")):
        with h5py.File(path, "r") as f:
            if "methods" in f and f.attrs.get("kind") == "evaluate" and f.attrs["task_options"].startswith("{") \
                    and any("tune" in f["methods"][m] for m in f["methods"]):
                return path
    pytest.skip("no committed run file")


def test_load_gives_the_numbers_h5py_reads():
    path = committed_run()
    run = hamlet.runs.load(path)
    with h5py.File(path, "r") as f:
        names = [n.decode() if isinstance(n, bytes) else n for n in f["method_names"][()]]
        assert run["method_names"] == names
        assert run["task"] == f.attrs["task"]
        assert run["problems"] == f.attrs["problems"]
        assert run["task_options"] == json.loads(f.attrs["task_options"])
        for name in names:
            group = f["methods"][name]
            method = run["methods"][name]
            for key in ("loss", "final_loss", "grad_norm", "update_norm"):
                np.testing.assert_array_equal(method[key], group[key][()])
            assert method["final_mean"] == group.attrs["final_mean"]
            assert method["options"] == json.loads(group.attrs["options"])
            if "tune" in group:
                np.testing.assert_array_equal(method["tune"]["grid"], group["tune"]["grid"][()])
                assert method["tune"]["best_lr"] == group["tune"].attrs["best_lr"]


def test_compare_returns_the_table_of_hamlet_compare(tmp_path):
    a, b = tmp_path / "a.h5", tmp_path / "b.h5"
    run_hamlet("evaluate", "--optimizers=adam,sgd", "--problems=4", "--steps=5", f"--out={a}", "--log-level=warn")
    run_hamlet("evaluate", "--optimizers=nag", "--problems=4", "--steps=5", f"--out={b}", "--log-level=warn")
    table = hamlet.compare([a, b], reference="adam")
    rows = {r["method"]: r for r in table["rows"]}
    assert set(rows) == {"adam", "sgd", "nag"}
    cli = json.loads(run_hamlet("compare", f"--in={a}", f"--in={b}", "--reference=adam", "--format=json").stdout)
    assert table == cli
    with pytest.raises(hamlet.Error, match="task option dim"):
        c = tmp_path / "c.h5"
        run_hamlet("evaluate", "--optimizers=nag", "--task.dim=5", "--problems=4", "--steps=5", f"--out={c}",
                   "--log-level=warn")
        hamlet.compare([a, c], reference="adam")


def test_load_names_a_bad_file(tmp_path):
    bad = tmp_path / "bad.h5"
    bad.write_text("not hdf5")
    with pytest.raises(hamlet.Error, match="not a readable HDF5 file"):
        hamlet.runs.load(bad)
