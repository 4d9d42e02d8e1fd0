"""Run files (HDF5, written by `hamlet evaluate`, `tune`, `meta-train`) as numpy, and comparison tables."""
import json

from . import _C


def _numpy(value):
    return value.numpy() if hasattr(value, "numpy") else value


def _parse_options(text):
    # JSON objects, or the "k=v, k=v" text of files written before 2026-12-01: hamlet's io module reads both
    # (docs/file_formats.md).
    try:
        return dict(_C.parse_options(text))
    except _C.Error:
        return text


def _method(group):
    attrs = group.get("@attrs", {})
    out = {k: _numpy(v) for k, v in group.items() if k not in ("@attrs", "diagnostics", "tune")}
    for key, value in attrs.items():
        out[key] = _parse_options(value) if key == "options" else value
    if "diagnostics" in group:
        out["diagnostics"] = {k: _numpy(v) for k, v in group["diagnostics"].items() if k != "@attrs"}
    if "tune" in group:
        tune = {k: _numpy(v) for k, v in group["tune"].items() if k != "@attrs"}
        tune.update(group["tune"].get("@attrs", {}))
        out["tune"] = tune
    return out


def load(path):
    """A run file as a dict: its root attributes (``task_options`` and the like parsed from JSON), ``method_names``
    and, per method, ``methods[name]``: numpy arrays ``loss`` [problems, steps], ``final_loss``, ``grad_norm``,
    ``update_norm``, ``diagnostics``, the tuning grid under ``tune``, the parsed ``options`` and the summary numbers
    (``final_mean``, ``final_se``, ...). Read by hamlet's own HDF5 reader (hamlet.Error on a bad file)."""
    raw = _C.read_h5(str(path))
    out = {}
    for key, value in raw.get("@attrs", {}).items():
        out[key] = _parse_options(value) if key.endswith("options") else value
    if "method_names" in raw:
        out["method_names"] = list(raw["method_names"])
    if "methods" in raw:
        out["methods"] = {name: _method(g) for name, g in raw["methods"].items() if name != "@attrs"}
    for key, value in raw.items():
        if key not in ("@attrs", "method_names", "methods"):
            out[key] = _numpy(value) if not isinstance(value, dict) else value
    return out


def compare(paths, reference="validation", title="", as_dataframe=False):
    """The table `hamlet compare` computes for these run files ("FILE" or "FILE:LABEL", as --in): a dict with the
    table's settings and ``rows``, one dict per method (final loss mean and seed-aware SE, Δ against the reference
    and its verdict, ...). With as_dataframe=True the rows as a pandas DataFrame (needs python3-pandas)."""
    table = json.loads(_C.compare_json([str(p) for p in paths], reference, title))
    if as_dataframe:
        import pandas  # optional dependency
        return pandas.DataFrame(table["rows"])
    return table
