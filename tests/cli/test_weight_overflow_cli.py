"""`pgrun` stops an importance-weight overflow with its own message and exit status 3 (issue 12).

The subprocess runs the real CLI with one change: from iteration 2 on (once θ ≠ 0) the sampler
records the behaviour log-probabilities 100 nats lower, i.e. the batch claims its actions were
e^-100 as likely under π_θ, so every episode's trajectory weight is e^{100·L}: beyond float32.
"""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys

import pytest

from tests.helpers import ROOT

PATCHED_CLI = """
import sys
import jax, jax.numpy as jnp
import pgrun.train.offpolicy as off

real = off.rollout_episodes

def doctored(env, env_params, policy, params, key, n, max_steps):
    batch = real(env, env_params, policy, params, key, n, max_steps)
    fresh = jnp.all(params["theta"] == 0)  # iteration 1 (softmax_linear starts at θ = 0)
    shift = jnp.where(fresh, 0.0, 100.0)
    return batch._replace(log_prob=jnp.where(batch.valid, batch.log_prob - shift, batch.log_prob))

off.rollout_episodes = doctored
from pgrun.cli import main
sys.argv = ["pgrun", *sys.argv[1:]]
main()
"""


@pytest.mark.slow  # a subprocess that compiles its own program (~15 s on 2 idle cores)
def test_importance_weight_overflow_exits_3_naming_cause_and_fix(tmp_path):
    d = tmp_path / "run"
    env = dict(os.environ, PYTHONPATH=str(ROOT), PGRUN_CACHE_DIR=str(tmp_path / "cache"))
    p = subprocess.run([sys.executable, "-c", PATCHED_CLI, f"hydra.run.dir={d}", "env=Chain",
                        "policy=softmax_linear", "estimator=is_trajectory", "estimator.epochs=2", "iterations=3",
                        "log_every=3", "num_seeds=2", "episodes_per_iteration=4", "progress=false",
                        "checkpoint_every=0"],
                       capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)
    assert p.returncode == 3, p.stderr[-3000:]
    assert re.search(r"importance-weight overflow at iteration 2 \(seed 0\)", p.stderr), p.stderr[-3000:]
    for fix in ("estimator.clip_weight", "estimator=is_per_decision"):
        assert fix in p.stderr, p.stderr[-3000:]
    assert "Traceback" not in p.stderr
    with open(d / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    # iteration 1 of both seeds kept, nothing from the overflow on
    assert [(r["iteration"], r["seed"]) for r in rows] == [("1", "0"), ("1", "1")]
