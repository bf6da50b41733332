"""runner.scalars: the values every experiment logger gets from a chunk, checked by hand."""

from __future__ import annotations

import numpy as np
import pytest

from pgrun.runner.scalars import chunk_scalars, step_rows


def _chunk():
    """3 runs (points 0, 1, 0) x 3 iterations (7, 8, 9); the third slot inactive."""
    nan = np.nan
    return {"iteration": np.array([[7, 8, 9]] * 3), "active": np.array([[True, True, False]] * 3),
            "seed": np.zeros((3, 3)), "finite": np.ones((3, 3), bool),
            "return_mean": np.array([[1.0, 2.0, 0.0], [10.0, 20.0, 0.0], [3.0, 5.0, 0.0]]),
            "kl": np.array([[nan, 1.0, 0.0], [nan, nan, 0.0], [nan, 3.0, 0.0]])}


def test_seed_mean_min_max_per_point_and_step():
    got = list(chunk_scalars(_chunk(), np.array([0, 1, 0])))
    assert [(s, p) for s, p, _ in got] == [(7, 0), (7, 1), (8, 0), (8, 1)]
    assert got[0][2] == {"return_mean": 2.0, "return_mean_min": 1.0, "return_mean_max": 3.0}  # kl all NaN: left out
    assert got[2][2] == pytest.approx({"return_mean": 3.5, "return_mean_min": 2.0, "return_mean_max": 5.0, "kl": 2.0})
    assert got[3][2] == {"return_mean": 20.0, "return_mean_min": 20.0, "return_mean_max": 20.0}


def test_upto_and_after_cut_the_steps_and_rows_key_the_points():
    m, points = _chunk(), np.array([0, 1, 0])
    assert [s for s, _, _ in chunk_scalars(m, points, upto=8)] == [7, 7]  # a divergence at 8
    assert [s for s, _, _ in chunk_scalars(m, points, after=7)] == [8, 8]  # logged before a resume
    rows = step_rows(m, points, sweep=True)
    assert [s for s, _ in rows] == [7, 8]
    assert rows[0][1]["point_1/return_mean"] == 10.0 and rows[0][1]["point_0/return_mean_max"] == 3.0
    assert step_rows(m, np.zeros(3, int), sweep=False)[0][1]["return_mean"] == pytest.approx(14 / 3)


def test_run_name_is_the_last_two_parts_of_the_run_dir():
    from pgrun.runner.loggers import run_name

    assert run_name("outputs/2026-12-02/10-00-00") == "2026-12-02_10-00-00"
    assert run_name("multirun/2026-12-02/10-00-00/3/") == "10-00-00_3"
