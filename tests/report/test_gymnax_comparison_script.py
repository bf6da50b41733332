"""scripts/gymnax_comparison.py (docs/compare.md's closing comparison): its --dry-run prints the
four multiruns and the pgrun-compare command, every (estimator, env) it sweeps is a valid config,
and (with gymnax) each env's T is its episode length, so ppo's num_envs × num_steps equals the
16 episodes the other estimators sample per update."""

from __future__ import annotations

import importlib.util
import os
import shlex
import subprocess
import sys

import pytest
from helpers import make_config, optional_module

from pgrun.cli import expand_gym_env

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "scripts", "gymnax_comparison.py")


def _script():
    spec = importlib.util.spec_from_file_location("gymnax_comparison", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_dry_run_prints_four_multiruns_and_the_comparison(tmp_path):
    p = subprocess.run([sys.executable, SCRIPT, "--dry-run", "--root", str(tmp_path)], capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    cmds = [shlex.split(line[2:]) for line in p.stdout.splitlines() if line.startswith("$ ")]
    assert len(cmds) == 5 and not any(tmp_path.iterdir())  # nothing ran
    for c in cmds[:4]:
        assert "-m" in c and "estimator=reinforce,reward_to_go,baseline,actor_critic,ppo" in c and "num_seeds=8" in c
    assert cmds[4][2] == "pgrun.report.compare" and f"{tmp_path}/runs" in cmds[4]


def test_every_swept_config_is_valid():
    mod = _script()
    for cmd in mod.commands("/tmp/x")[:4]:
        args = [a for a in cmd[cmd.index("pgrun.cli") + 2:] if not a.startswith("hydra.")]  # after `-m`
        for est in mod.ESTIMATORS:
            one = [f"estimator={est}" if a.startswith("estimator=") else a for a in args]
            cfg = make_config(*expand_gym_env(one))
            assert cfg.num_seeds == 8 and cfg.estimator.name == est
            if est == "ppo":  # shuffled minibatches must divide the batch
                assert cfg.num_envs * cfg.num_steps % cfg.estimator.minibatches == 0


@pytest.mark.gymnax
def test_T_is_each_envs_episode_length():
    """Uniform actions in gymnax: every episode ends (terminated, or DiscountingChain's time limit)
    after exactly T steps."""
    gymnax = optional_module("gymnax")
    import jax

    for gid, T in _script().ENVS.items():
        env, params = gymnax.make(gid)
        for seed in range(3):
            key = jax.random.key(seed)
            _, state = env.reset(key, params)
            steps, done = 0, False
            while not done and steps < 10 * T:
                key, k_a, k_s = jax.random.split(key, 3)
                a = jax.random.randint(k_a, (), 0, env.action_space(params).n)
                _, state, _, term, trunc, _ = env.step(k_s, state, a, params)
                steps, done = steps + 1, bool(term or trunc)
            assert done and steps == T, (gid, seed, steps)
