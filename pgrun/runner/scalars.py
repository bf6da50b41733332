"""Which values an experiment logger (TensorBoard, W&B, Trackio) gets from one chunk of metrics.

`chunk_scalars` is the one place that decides it; each backend only writes what it yields:
per active iteration (before a divergence) and per sweep point, each metric of metrics.csv
averaged over the point's seeds (NaN entries ignored, all-NaN metrics left out), plus
`return_mean_min` / `return_mean_max` over those seeds. Bookkeeping columns are skipped.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

SKIP = ("iteration", "seed", "point", "episodes", "wall_s", "active", "finite", "weight_overflow", "log_weight_max")


def chunk_scalars(m: dict, point_of_run: np.ndarray, upto: int | None = None,
                  after: int | None = None) -> Iterator[tuple[int, int, dict[str, float]]]:
    """(step, point, {tag: value}) for host metrics {name: [R, K]} of one chunk, step = iteration,
    in order of step then point. Only active iterations, those < `upto` (a divergence) and those
    > `after` (already logged before a resume). `point_of_run` [R]: each run's sweep point."""
    point_of_run = np.asarray(point_of_run)
    active = np.asarray(m["active"])
    n_points = int(point_of_run.max()) + 1
    for k in range(active.shape[1]):
        if not active[0, k]:
            continue
        step = int(m["iteration"][0, k])
        if (upto is not None and step >= upto) or (after is not None and step <= after):
            continue
        for p in range(n_points):
            runs = point_of_run == p
            values: dict[str, float] = {}
            for name, arr in m.items():
                if name in SKIP or np.ndim(arr) != 2:
                    continue
                x = np.asarray(arr[runs, k], np.float64)
                if np.all(np.isnan(x)):
                    continue
                values[name] = float(np.nanmean(x))
                if name == "return_mean":
                    values["return_mean_min"] = float(np.nanmin(x))
                    values["return_mean_max"] = float(np.nanmax(x))
            yield step, p, values


def tag(name: str, point: int, sweep: bool) -> str:
    """The key of metric `name` of sweep point `point` in a one-run logger (W&B, Trackio)."""
    return f"point_{point}/{name}" if sweep else name


def step_rows(m: dict, point_of_run: np.ndarray, sweep: bool, upto: int | None = None,
              after: int | None = None) -> list[tuple[int, dict[str, float]]]:
    """`chunk_scalars` merged into one row per step, {tag(metric, point): value}, for the loggers
    that keep all sweep points in one run."""
    rows: dict[int, dict[str, float]] = {}
    for step, p, values in chunk_scalars(m, point_of_run, upto, after):
        rows.setdefault(step, {}).update({tag(k, p, sweep): v for k, v in values.items()})
    return list(rows.items())
