"""The one confidence interval of pgrun's outputs: a percentile bootstrap over replicates (seeds).

summary.json (`final_return_ci95`), pgrun-eval, the lecture report's tables and pgrun-plot's
bands and final-score tables all call `bootstrap_ci`, so the same values give the same interval
everywhere. Percentile bootstrap (`scipy.stats.bootstrap`, method="percentile"): resample the n
replicates with replacement `N_BOOT` times (generator `np.random.default_rng(SEED)`, so the
interval is deterministic), take the statistic of each resample, and report its 2.5 % and 97.5 %
percentiles. Each resampled mean is a mean of observed values, so the interval of a mean lies
within [min, max] of the data: a bounded metric (CartPole's return ≤ 500) keeps its bounds,
which a Student-t interval (mean ± t·s/√n) does not. With two replicates it is [min, max].
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
from scipy import stats

N_BOOT = 2000
SEED = 0
LEVEL = 0.95


def iqm(x, axis=0):
    """Interquartile mean: the mean of the middle 50 % (scipy trim_mean, 25 % each side)."""
    return stats.trim_mean(x, 0.25, axis=axis)


STATS: dict[str, Callable[..., Any]] = {"mean": np.mean, "iqm": iqm}


def bootstrap_ci(data: np.ndarray, stat: str = "mean", n_boot: int = N_BOOT, seed: int = SEED):
    """95 % percentile-bootstrap CI of STATS[stat] over axis 0 of data [n, ...]
    (resampling the n replicates). -> (lo, hi), each data.shape[1:]; NaN when n < 2."""
    data = np.asarray(data, np.float64)
    if data.shape[0] < 2:
        nan = np.full(data.shape[1:], np.nan)
        return nan, nan
    f = STATS[stat]
    same = np.all(data == data[:1], axis=0)  # bootstrap is degenerate where all replicates agree
    res = stats.bootstrap((data,), lambda x, axis: f(x, axis=axis), axis=0, vectorized=True,
                          n_resamples=n_boot, confidence_level=LEVEL, method="percentile",
                          random_state=np.random.default_rng(seed))
    lo, hi = res.confidence_interval
    point = f(data, axis=0)
    return np.where(same, point, lo), np.where(same, point, hi)


def mean_ci(x) -> tuple[float, float]:
    """`bootstrap_ci` of the mean of the values x [n]; (mean, mean) for a single value."""
    x = np.asarray(x, np.float64).reshape(-1)
    m = float(x.mean())
    if len(x) < 2:
        return m, m
    lo, hi = bootstrap_ci(x[:, None], "mean")
    return float(lo[0]), float(hi[0])
