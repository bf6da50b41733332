"""A gymnasium FuncEnv written elsewhere runs as env=func:<module>:<Class>, unchanged."""

import math
import os
import subprocess
import sys

import pytest
from gymnasium.envs.phys2d.pendulum import PendulumFunctional

from pgrun.envs import make_env
from pgrun.errors import ConfigError

SPEC = "gymnasium.envs.phys2d.pendulum:PendulumFunctional"


def test_make_env_adapts_a_foreign_funcenv():
    env = make_env(f"func:{SPEC}")
    assert isinstance(env, PendulumFunctional)
    assert env.name == f"func:{SPEC}" and env.solved_threshold is None
    assert env.action_space.shape == (1,)
    with pytest.raises(ConfigError, match="cannot import"):
        make_env("func:gymnasium.envs.phys2d.pendulum:Nope")
    with pytest.raises(ConfigError, match="not a gymnasium FuncEnv"):
        make_env("func:gymnasium.spaces:Box")


@pytest.mark.slow  # cold-cache CI time; the non-slow suite keeps a test of the same path
def test_cli_trains_on_gymnasiums_own_jax_pendulum(tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "pgrun.cli", f"env=func:{SPEC}", "env.max_episode_steps=50", "iterations=2",
           "num_seeds=2", "episodes_per_iteration=4", "progress=false", f"hydra.run.dir={out}"]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                       env=dict(os.environ, PGRUN_CACHE_DIR=str(tmp_path / "cache")))
    assert p.returncode == 0, p.stderr
    rows = (out / "metrics.csv").read_text().splitlines()[1:]
    assert len(rows) == 4
    for r in rows:
        ret, length = float(r.split(",")[4]), float(r.split(",")[8])
        assert math.isfinite(ret) and ret < 0 and length == 50  # pendulum: costs every step, never terminates
