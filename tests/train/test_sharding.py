"""Multi-device: the run axis sharded over 4 (forced host) devices gives the 1-device metrics.

Random bits and returns come out identical (the partitioned program draws the same bits);
float metrics agree to float32 rounding, not bit for bit: with 2 runs per device instead of 6
XLA's CPU backend vectorizes some reductions (e.g. the global gradient norm) differently.
"""

from __future__ import annotations

import json
import os

import pytest
from scale_helpers import config, pgrun, read_rows

from pgrun.runner.loop import run

ARGS = ["env=Bandit", "policy=softmax_linear", "estimator=value_baseline", "num_seeds=3", "iterations=6",
        "episodes_per_iteration=4", "log_every=3", "progress=false", "sweep.optimizer.lr=[0.05,0.2]"]
EXACT = ("iteration", "seed", "point", "optimizer.lr", "env_steps", "episodes")


def test_four_devices_give_the_one_device_metrics(tmp_path):
    one = str(tmp_path / "one")
    run(config(*ARGS[2:]), one)
    four = tmp_path / "four"
    p = pgrun(*ARGS, f"hydra.run.dir={four}", env={"XLA_FLAGS": "--xla_force_host_platform_device_count=4"})
    assert p.returncode == 0, p.stderr
    assert json.load(open(four / "summary.json"))["devices"] == 4  # 6 runs padded to 8, 2 per device
    a, b = read_rows(os.path.join(one, "metrics.csv")), read_rows(str(four / "metrics.csv"))
    assert len(a) == len(b) == 6 * 6
    for ra, rb in zip(a, b):
        for k in ra:
            if k in EXACT or k.startswith("return_"):
                assert ra[k] == rb[k], (k, ra, rb)
            elif k != "wall_s" and ra[k] != "":
                assert float(ra[k]) == pytest.approx(float(rb[k]), rel=1e-5, abs=1e-6), (k, ra, rb)
