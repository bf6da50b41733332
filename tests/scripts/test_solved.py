"""scripts/solved.py: when a run counts as solved (the bench scripts' criterion), against hand-computed cases."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                                "scripts"))
from solved import read_metrics, recent_mean, solved_at, window  # noqa: E402


@pytest.mark.parametrize("n, w", [(16, 10), (32, 10), (10, 10), (8, 13), (4, 25), (3, 34), (1, 100)])
def test_window_is_at_least_ten_iterations_and_a_hundred_episodes(n, w):
    assert window(n) == w


def test_recent_mean_by_hand():
    r = np.array([[1.0, 10.0], [2.0, 20.0], [3.0, 30.0], [5.0, 50.0]])
    got = recent_mean(r, 3)
    assert np.isnan(got[:2]).all()
    np.testing.assert_allclose(got[2:], [[2.0, 20.0], [10 / 3, 100 / 3]])


def metrics(returns, steps_per_iter=100.0, log_every=5):
    k, s = returns.shape
    return {"iteration": np.arange(1, k + 1), "seeds": np.arange(s), "return": returns,
            "env_steps": steps_per_iter * np.arange(1, k + 1)[:, None] * (1 + np.arange(s))[None, :],
            "wall_s": 0.5 * np.ceil(np.arange(1, k + 1) / log_every)}


def test_solved_at_first_iteration_with_seven_of_eight_and_its_cost():
    # N = 16: a 10-iteration window. Seeds 0-6 return 500 from iteration 3 on (index 2): their
    # last-10 mean reaches 475 when at most one of the 10 iterations is at 250, i.e. at iteration 12
    # (iterations 3..12 all 500); at iteration 11 the window 2..11 holds one 250: (250 + 9 * 500) / 10
    # = 475 -> already solved at iteration 11. Seed 7 stays at 100.
    r = np.full((20, 8), 250.0)
    r[2:, :7] = 500.0
    r[:, 7] = 100.0
    r[-1, 0] = 0.0  # seed 0's last window: (9 * 500 + 0) / 10 = 450, so only 6 seeds are solved at the end
    got = solved_at(metrics(r), episodes_per_iteration=16)
    assert got["window"] == 10
    assert got["iteration"] == 11
    # env steps per seed at iteration 11: 100 * 11 * (1..8), mean over seeds = 1100 * 4.5
    assert got["env_steps"] == pytest.approx(1100 * 4.5)
    assert got["run_s"] == pytest.approx(1.5)  # iteration 11 is in the third 5-iteration chunk
    assert got["final_solved"] == 6


def test_six_of_eight_is_not_solved_and_a_small_batch_needs_a_longer_window():
    r = np.full((30, 8), 500.0)
    r[:, 6:] = 0.0  # only 6 seeds ever reach 500
    assert solved_at(metrics(r), 16)["iteration"] is None
    assert solved_at(metrics(r), 16, need=6)["iteration"] == 10
    # N = 4: the window is 25 iterations, the first full one ends at iteration 25
    assert solved_at(metrics(r), 4, need=6)["iteration"] == 25
    assert solved_at(metrics(r), 4, need=6)["final_solved"] == 6


def test_read_metrics_groups_rows_by_iteration_and_seed(tmp_path):
    p = tmp_path / "metrics.csv"
    p.write_text("iteration,seed,env_steps,return_mean,wall_s\n"
                 "1,8,20,20.0,0.1\n1,9,30,30.0,0.1\n2,8,45,25.0,0.2\n2,9,70,40.0,0.2\n")
    m = read_metrics(str(p))
    assert m["iteration"].tolist() == [1, 2] and m["seeds"].tolist() == [8, 9]
    assert m["return"].tolist() == [[20.0, 30.0], [25.0, 40.0]]
    assert m["env_steps"].tolist() == [[20.0, 30.0], [45.0, 70.0]]
    assert m["wall_s"].tolist() == [0.1, 0.2]


def test_run_solved_at_reads_a_run_directory(tmp_path):
    """A run directory as pgrun writes it: N from .hydra/config.yaml (8 here: a 13-iteration window),
    the time from Enter = the command's wall - summary run_s + the solving chunk's wall_s."""
    from solved import run_solved_at

    (tmp_path / ".hydra").mkdir()
    (tmp_path / ".hydra" / "config.yaml").write_text("seed: 0\nepisodes_per_iteration: 8\niterations: 20\n")
    (tmp_path / "summary.json").write_text('{"run_s": 4.0}')
    rows = ["iteration,seed,env_steps,return_mean,wall_s"]
    for it in range(1, 21):
        for seed in range(8):
            rows.append(f"{it},{seed},{100 * it},{500.0 if seed < 7 else 10.0},{0.2 * it}")
    (tmp_path / "metrics.csv").write_text("\n".join(rows) + "\n")
    at = run_solved_at(str(tmp_path), wall=10.0)
    assert at["window"] == 13 and at["iteration"] == 13 and at["final_solved"] == 7
    assert at["from_enter"] == pytest.approx(10.0 - 4.0 + 0.2 * 13)
    assert run_solved_at(str(tmp_path), wall=10.0, need=8)["from_enter"] is None
