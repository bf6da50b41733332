"""logger.tensorboard=true: event files beside metrics.csv, readable by TensorBoard, one per sweep point."""

from __future__ import annotations

import os

import numpy as np
import pytest
from helpers import optional_module
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
