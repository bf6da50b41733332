"""Host-side output: metrics.csv rows and summary.json."""

from __future__ import annotations

import csv
import io
import json
import math
import os
from importlib import metadata

import numpy as np

COLUMNS = ["iteration", "seed", "env_steps", "episodes", "return_mean", "return_std", "return_min",
           "return_max", "length_mean", "loss", "grad_norm", "entropy", "value_loss", "wall_s"]
COLUMNS += ["is_weight_mean", "is_weight_max", "is_ess", "log_ratio_std", "kl_old_new", "clip_frac", "kl_beta",
            "updates", "trpo_ls_steps", "trpo_kl"]  # batch reuse (pgrun.train.offpolicy); empty elsewhere
# env=Tokens runs add these after them (pgrun.train.group.sequence_metrics): exact-match rate and the mean
# completion length of the correct and of the incorrect episodes
SEQUENCE_COLUMNS = ["exact_match", "length_correct", "length_incorrect"]


class MetricsWriter:
    """Appends whole chunks of rows to metrics.csv; each chunk is one write(2), then fsynced.

    A run killed mid-way therefore leaves whole rows (at most the chunk in flight is lost; a
    write cut short by the kill can only tear the last line, which resume drops).
    `append=True` continues an existing file (resume) instead of starting one with the header.
    """

    def __init__(self, path: str, columns: list[str] = COLUMNS, append: bool = False):
        self.path, self.columns = path, columns
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | (0 if append else os.O_TRUNC)
        self._fd: int | None = os.open(path, flags, 0o644)
        if not append:
            self._write(",".join(columns) + "\n")

    def _write(self, text: str) -> None:
        if self._fd is None:
            raise TypeError(f"{self.path} is closed")
        data = text.encode()
        while data:
            data = data[os.write(self._fd, data):]
        os.fsync(self._fd)

    def write_rows(self, rows: list[dict]) -> None:
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=self.columns, extrasaction="ignore", lineterminator="\n")
        for r in rows:
            w.writerow({k: _fmt(v) for k, v in r.items()})
        self._write(buf.getvalue())  # one write per chunk: no half-written chunk

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _fmt(v):
    if isinstance(v, (float, np.floating)):
        return "" if math.isnan(v) else repr(float(v))
    if isinstance(v, (np.integer,)):
        return int(v)
    return v


def rows_from_chunk(m: dict, seeds: list[int], wall_s: float, upto: int | None = None,
                    extra: list[dict] | None = None) -> list[dict]:
    """Host metrics {name: [S, K]} -> rows ordered by (iteration, seed), active iterations only.

    `upto`: keep only rows with iteration < upto (used to stop before a non-finite one).
    `extra`: per-run columns merged into its rows (a sweep's point index and values).
    """
    rows = []
    S, K = m["active"].shape
    for k in range(K):
        for s in range(S):
            if not m["active"][s, k] or (upto is not None and m["iteration"][s, k] >= upto):
                continue
            row = {name: m[name][s, k] for name in COLUMNS + SEQUENCE_COLUMNS if name in m}
            row["seed"], row["wall_s"] = seeds[s], round(wall_s, 4)
            if extra is not None:
                row.update(extra[s])
            rows.append(row)
    return rows


def confidence_interval(x: np.ndarray) -> tuple[float, float]:
    """95 % CI of the mean of x: `pgrun.runner.stats.mean_ci`, the percentile bootstrap every output
    of pgrun uses (degenerate to the mean for one value)."""
    from pgrun.runner.stats import mean_ci

    return mean_ci(x)


def versions() -> dict:
    out: dict[str, str | None] = {}
    for pkg in ("pgrun", "jax", "jaxlib", "flax", "optax", "gymnasium", "hydra-core", "numpy"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = None
    return out


def write_json(path: str, obj: dict) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=2, default=lambda o: o.item() if hasattr(o, "item") else str(o))
        f.write("\n")
    os.replace(tmp, path)
