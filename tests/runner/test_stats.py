"""pgrun.runner.stats computes scipy's percentile bootstrap and trim_mean without importing
scipy.stats: the same intervals, bit for bit, checked against scipy itself (a second
implementation), and hand-computed quantiles."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from scipy import stats

from pgrun.runner.stats import N_BOOT, SEED, bootstrap_ci, iqm, mean_ci, quantile, trim_mean


def datasets():
    rng = np.random.default_rng(7)
    for trial in range(60):
        n, k = int(rng.integers(2, 20)), int(rng.integers(1, 4))
        kind = trial % 3
        if kind == 0:
            yield rng.normal(size=(n, k)) * 100
        elif kind == 1:  # returns with ties (CartPole's are integers)
            yield rng.integers(0, 500, size=(n, k)).astype(float)
        else:
            yield np.round(rng.uniform(0, 500, (n, k)), 2)


@pytest.mark.parametrize("stat", ["mean", "iqm"])
def test_bootstrap_ci_equals_scipy_bit_for_bit(stat):
    f = np.mean if stat == "mean" else (lambda x, axis: stats.trim_mean(x, 0.25, axis=axis))
    for data in datasets():
        res = stats.bootstrap((data,), lambda x, axis: f(x, axis=axis), axis=0, vectorized=True,
                              n_resamples=N_BOOT, confidence_level=0.95, method="percentile",
                              rng=np.random.default_rng(SEED))
        point = f(data, axis=0)
        same = np.all(data == data[:1], axis=0)
        lo, hi = bootstrap_ci(data, stat)
        np.testing.assert_array_equal(lo, np.where(same, point, res.confidence_interval.low))
        np.testing.assert_array_equal(hi, np.where(same, point, res.confidence_interval.high))


def test_trim_mean_and_iqm_equal_scipy():
    for data in datasets():
        for axis in (0, 1, -1):
            np.testing.assert_array_equal(trim_mean(data, 0.25, axis=axis), stats.trim_mean(data, 0.25, axis=axis))
    assert iqm(np.array([1, 2, 3, 5])) == 2.5  # scipy's docstring example: the middle two
    assert iqm(np.array([100.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, -50.0])) == 3.5  # 2 cut each side


def test_quantile_by_hand():
    y = np.array([[4.0, 1.0, 3.0, 2.0, 5.0]])  # sorted 1..5, n = 5
    # p = 0.1: p·n + 1 - p = 1.4 -> between the 1st and 2nd values, 0.4 of the way: 1.4
    assert quantile(y, 0.1)[0] == pytest.approx(1.4, abs=1e-12)
    assert quantile(y, 0.5)[0] == 3.0
    assert quantile(y, 1.0)[0] == 5.0 and quantile(y, 0.0)[0] == 1.0
    assert np.isnan(quantile(np.array([[1.0, np.nan, 2.0]]), 0.5)[0])


def test_two_replicates_give_min_max_and_one_gives_nan():
    lo, hi = mean_ci([3.0, 7.0])
    assert (lo, hi) == (3.0, 7.0)
    assert np.isnan(bootstrap_ci(np.array([[1.0]]))[0]).all()


def test_runner_stats_does_not_import_scipy_stats():
    code = "import sys, pgrun.runner.stats as s; s.mean_ci([1.0, 2.0, 4.0]); print('scipy.stats' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
