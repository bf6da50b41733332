"""CI smoke runs: every registered env and two gymnasium ids train 2 iterations through
`pgrun.runner.loop.run` (in-process, tiny budgets) and write finite metrics; the `env=gym:<id>`
error paths end in a one-paragraph ConfigError (exit 2 from the CLI).

Compiled programs go to the persistent cache (PGRUN_CACHE_DIR, else ~/.cache/pgrun/jax),
so re-runs mostly skip XLA compilation.
"""

from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys

import gymnasium
import pytest
from helpers import ROOT as REPO
from helpers import make_config

from pgrun.cli import expand_gym_env
from pgrun.envs import ENVS
from pgrun.errors import ConfigError
from pgrun.runner.loop import run

ROOT = str(REPO)
TINY = ["num_seeds=2", "iterations=2", "episodes_per_iteration=2", "log_every=1", "progress=false",
        "policy.hidden=[8]", "estimator.critic_hidden=[8]"]


def tiny_config(*overrides: str):
    return make_config(*TINY, *overrides)


def check_outputs(out_dir, iterations=2, seeds=2) -> list[dict]:
    with open(os.path.join(out_dir, "metrics.csv")) as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == iterations * seeds
    for r in rows:
        for k in ("return_mean", "length_mean", "loss", "grad_norm", "entropy"):
            assert math.isfinite(float(r[k])), (k, r)
    with open(os.path.join(out_dir, "summary.json")) as f:
        summary = json.load(f)
    assert summary["status"] == "completed" and summary["iterations"] == iterations
    assert math.isfinite(summary["final_return_mean"])
    return rows


# per env: a policy that fits its action space, and a short time limit where that keeps it fast
SMOKE = {
    "CartPole": ["policy=softmax_linear", "env.max_episode_steps=50"],
    "Acrobot": ["policy=mlp", "env.max_episode_steps=50"],
    "MountainCar": ["policy=mlp", "env.max_episode_steps=50"],
    "MountainCarContinuous": ["policy=gaussian_linear", "env.max_episode_steps=50"],
    "Pendulum": ["policy=mlp", "env.max_episode_steps=50"],
    "Bandit": ["policy=softmax_linear"],
    "Particle": ["policy=softmax_linear", "policy.features=env"],
    "ParticleContinuous": ["policy=gaussian_linear"],
    "Chain": ["policy=softmax_linear"],
    "Tokens": ["policy=mlp", "env.task=copy", "env.prompt_len=2", "env.vocab=3", "env.horizon=3"],
}


def test_smoke_table_covers_every_registered_env():
    assert sorted(SMOKE) == sorted(ENVS)


@pytest.mark.parametrize("name", sorted(SMOKE))
def test_registered_env_runs(name, tmp_path):
    estimator = "actor_critic" if name in ("Acrobot", "Pendulum") else "baseline"
    run(tiny_config(f"env={name}", f"estimator={estimator}", *SMOKE[name]), str(tmp_path))
    check_outputs(tmp_path)


@pytest.mark.parametrize("overrides", [
    ["env=gym:CartPole-v1", "policy=mlp", "estimator=actor_critic", "env.max_episode_steps=30"],
    ["env=gym:Pendulum-v1", "policy=gaussian_linear", "estimator=baseline", "env.max_episode_steps=30"],
])
def test_gym_env_runs_and_is_deterministic(overrides, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    run(tiny_config(*overrides), str(a))
    rows = check_outputs(a)
    assert all(float(r["length_mean"]) <= 30 for r in rows)
    run(tiny_config(*overrides), str(b))
    again = check_outputs(b)
    drop = lambda rs: [{k: v for k, v in r.items() if k != "wall_s"} for r in rs]  # noqa: E731
    assert drop(rows) == drop(again)


def test_gym_env_with_discrete_observations_runs(tmp_path):
    run(tiny_config("env=gym:FrozenLake-v1", "policy=softmax_linear", "estimator=reward_to_go"), str(tmp_path))
    check_outputs(tmp_path)


@pytest.mark.parametrize("overrides, phrases", [
    (["env=gym:CartPole-v9"], ["gym:CartPole-v1"]),
    (["env=gym:CartPol-v1"], ["close matches", "gym:CartPole-v1"]),
    (["env=gym:Pendulum-v1", "policy=softmax_linear"], ["needs a discrete action space"]),
    (["env=gym:CartPole-v1", "policy=gaussian_linear"], ["needs a continuous action space"]),
    (["env=gym:CliffWalking-v1"], ["no time limit", "env.max_episode_steps"]),
    (["env=gym:CartPole-v1", "env.vectorization_mode=threads"], ["sync, async"]),
    (["env=gym:CartPole-v1", "+env.params.no_such_arg=1"], ["env.params"]),
    (["env=gym"], ["env=gym:<id>"]),
])
def test_gym_config_errors(overrides, phrases, tmp_path):
    with pytest.raises(ConfigError) as e:
        run(tiny_config(*overrides), str(tmp_path))
    for p in phrases:
        assert p in str(e.value)


class _ToyEnv(gymnasium.Env):
    observation_space = gymnasium.spaces.Box(-1, 1, (2,))

    def __init__(self, action_space):
        self.action_space = action_space


@pytest.mark.parametrize("space", [
    gymnasium.spaces.MultiDiscrete([2, 3]),
    gymnasium.spaces.Dict({"a": gymnasium.spaces.Discrete(2)}),
])
def test_unsupported_action_space_is_a_config_error(space, tmp_path):
    gid = f"pgrun_test/{type(space).__name__}Action-v0"
    if gid not in gymnasium.registry:
        gymnasium.register(gid, entry_point=lambda: _ToyEnv(space), max_episode_steps=5)
    for policy in ("mlp", "softmax_linear", "gaussian_linear"):
        with pytest.raises(ConfigError, match=f"{type(space).__name__}.*action space"):
            run(tiny_config(f"env=gym:{gid}", f"policy={policy}"), str(tmp_path))


def test_expand_gym_env():
    assert expand_gym_env(["env=gym:CartPole-v1", "seed=1"]) == ["env=gym", "env.id=CartPole-v1", "seed=1"]
    assert expand_gym_env(["env=gym:A-v0,gym:B-v1"]) == ["env=gym", "env.id=A-v0,B-v1"]
    assert expand_gym_env(["env=CartPole", "env=CartPole,gym:A-v0"]) == ["env=CartPole", "env=CartPole,gym:A-v0"]


def test_cli_unknown_gym_id_exits_2(tmp_path):
    p = subprocess.run(
        [sys.executable, "-m", "pgrun.cli", "env=gym:CartPol-v1", f"hydra.run.dir={tmp_path}"],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert p.returncode == 2, p.stderr
    assert "config error" in p.stderr and "gym:CartPole-v1" in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1
