"""logger.tensorboard=true: event files beside metrics.csv, readable by TensorBoard, one per sweep point."""

from __future__ import annotations

import os

import numpy as np
import pytest
from helpers import make_config, optional_module
from scale_helpers import config, read_rows

from pgrun.runner.loop import run

EventAccumulator = optional_module("tensorboard.backend.event_processing.event_accumulator").EventAccumulator


def _scalars(path, tag):
    acc = EventAccumulator(path)
    acc.Reload()
    return [(e.step, e.value) for e in acc.Scalars(tag)]


def test_event_files_hold_the_seed_means_per_point_and_survive_resume(tmp_path):
    out = str(tmp_path / "run")
    # constant schedule: the run is extended on resume
    args = ["sweep.optimizer.lr=[0.05,0.2]", "logger.tensorboard=true", "optimizer.schedule=constant"]
    run(config(*args, "iterations=4"), out)
    summary = run(config(*args, "iterations=6", f"resume={out}"), "unused")
    assert sorted(os.listdir(os.path.join(out, "tensorboard"))) == ["point_0", "point_1"]
    rows = read_rows(os.path.join(out, "metrics.csv"))
    for p in (0, 1):
        got = _scalars(os.path.join(out, "tensorboard", f"point_{p}"), "return_mean")
        assert [s for s, _ in got] == list(range(1, 7))
        for it, value in got:
            want = np.mean([np.float32(r["return_mean"]) for r in rows if r["point"] == str(p)
                            and r["iteration"] == str(it)])
            assert value == pytest.approx(want, rel=1e-5)
    assert not any("tensorboard" in k for k in summary)  # summary.json does not change with the logger


def test_no_sweep_writes_one_run_directory(tmp_path):
    out = str(tmp_path / "run")
    run(config("logger.tensorboard=true"), out)
    files = os.listdir(os.path.join(out, "tensorboard"))
    assert len(files) == 1 and files[0].startswith("events.out.tfevents")
    assert [s for s, _ in _scalars(os.path.join(out, "tensorboard"), "loss")] == list(range(1, 7))


HOST = ["env=gym:CartPole-v1", "env.max_episode_steps=30", "num_seeds=2", "episodes_per_iteration=3",
        "policy.hidden=[8]", "estimator=actor_critic", "estimator.critic_hidden=[8]", "progress=false"]


def test_host_env_loop_writes_the_seed_means_too(tmp_path):
    """env=gym:<id> (runner/host_loop.py) honours logger.tensorboard: every metric of metrics.csv,
    averaged over seeds, at each iteration (chunks of 2: the last chunk is a partial one)."""
    from pgrun.runner.scalars import SKIP

    out = str(tmp_path / "run")
    run(make_config(*HOST, "iterations=3", "log_every=2", "logger.tensorboard=true"), out)
    rows = read_rows(os.path.join(out, "metrics.csv"))
    acc = EventAccumulator(os.path.join(out, "tensorboard"))
    acc.Reload()
    # metrics with a value (those NaN in every row, e.g. is_weight_mean without importance weights, are left out)
    metrics = [c for c in rows[0] if c not in SKIP and not all(np.isnan(float(r[c] or "nan")) for r in rows)]
    assert set(acc.Tags()["scalars"]) == {*metrics, "return_mean_min", "return_mean_max"}
    assert "return_mean" in metrics and "loss" in metrics
    for name in metrics:
        got = [(e.step, e.value) for e in acc.Scalars(name)]
        assert [s for s, _ in got] == [1, 2, 3], name
        for it, value in got:
            want = np.mean([np.float32(r[name]) for r in rows if r["iteration"] == str(it)])
            assert value == pytest.approx(want, rel=1e-5, abs=1e-6), (name, it)
