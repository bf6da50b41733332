"""The one confidence interval of pgrun's outputs: a percentile bootstrap over replicates (seeds).

summary.json (`final_return_ci95`), pgrun-eval, the lecture report's tables and pgrun-plot's
bands and final-score tables all call `bootstrap_ci`, so the same values give the same interval
everywhere. Percentile bootstrap (`scipy.stats.bootstrap`, method="percentile"): resample the n
replicates with replacement `N_BOOT` times (generator `np.random.default_rng(SEED)`, so the
interval is deterministic), take the statistic of each resample, and report its 2.5 % and 97.5 %
percentiles. Each resampled mean is a mean of observed values, so the interval of a mean lies
within [min, max] of the data: a bounded metric (CartPole's return ≤ 500) keeps its bounds,
which a Student-t interval (mean ± t·s/√n) does not. With two replicates it is [min, max].

Written with NumPy alone, step for step as scipy 1.17 computes it (`rng.integers(0, n, (N_BOOT, n))`
resamples, Hyndman-Fan type 7 quantiles, `trim_mean`'s partition), so the intervals are the
same bits as `scipy.stats.bootstrap`'s (tests/runner/test_stats.py compares them): importing
`scipy.stats` costs 0.43 s, about half of `import jax`, in every run, for one interval at its end.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

N_BOOT = 2000
SEED = 0
LEVEL = 0.95


def trim_mean(x, proportiontocut: float, axis: int = 0):
    """Mean of x along `axis` without the int(proportiontocut · n) lowest and highest values
    (`scipy.stats.trim_mean`: the same partition, so the same summation order and bits)."""
    x = np.asarray(x)
    n = x.shape[axis]
    low = int(proportiontocut * n)
    high = n - low
    if low > high:
        raise ValueError(f"proportiontocut={proportiontocut} cuts more than all {n} values")
    part = np.partition(x, (low, high - 1), axis)
    kept = part[(slice(None),) * (axis % part.ndim) + (slice(low, high),)]  # a view, as scipy's slice
    return np.mean(kept if np.issubdtype(kept.dtype, np.inexact) else kept.astype(np.float64), axis=axis)


def iqm(x, axis=0):
    """Interquartile mean: the mean of the middle 50 % (trim_mean, 25 % each side)."""
    return trim_mean(x, 0.25, axis=axis)


def quantile(y: np.ndarray, p: float) -> np.ndarray:
    """The p-quantile along the last axis, Hyndman-Fan type 7 (linear) as `scipy.stats.quantile`
    writes it: j + g = p·n + 1 - p (1-based), (1 - g)·y_(j) + g·y_(j+1); NaN where a row has one."""
    y = np.sort(y, axis=-1)
    n = y.shape[-1]
    jg = p * n + (1 - p)
    jp1 = jg // 1
    j = jp1 - 1
    g = 0.0 if j < 0 else jg % 1
    lo, hi = int(np.clip(j, 0, n - 1)), int(np.clip(jp1, 0, n - 1))
    out = (1 - g) * y[..., lo] + g * y[..., hi]
    return np.where(np.isnan(y).any(axis=-1), np.nan, out)


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
    x = np.moveaxis(data, 0, -1)  # [..., n]
    n = x.shape[-1]
    resample = np.random.default_rng(seed).integers(0, n, (n_boot, n), dtype=np.int64)
    theta = f(x[..., resample], axis=-1)  # [..., n_boot]: the statistic of each resample
    alpha = (1 - LEVEL) / 2
    lo, hi = quantile(theta, alpha), quantile(theta, 1 - alpha)
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
