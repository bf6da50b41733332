"""env=gymnax:<id> (pgrun/envs/gymnax_env.py): parity with gymnax's own `step` over full episodes,
terminated / truncated kept apart, params overrides, the errors, and short runs with the MLP and
the CNN policy.

gymnax is an optional extra (`pgrun[gymnax]`, which caps jax and gymnasium), not part of the test
extra. The tests that need it are marked `gymnax` and skip where it is not installed, except under
PGRUN_REQUIRE_OPTIONAL=1 (`helpers.optional_module`): .ci/run's main step deselects them
(`-m "not gymnax"`) and its second step runs only them in a venv with `.[test,gymnax]`, where a
missing gymnax fails. The missing-package error is checked without gymnax (unmarked tests).
"""

from __future__ import annotations

import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import make_config, optional_module

from pgrun.envs import reset, step
from pgrun.errors import ConfigError, MissingExtra


def test_missing_gymnax_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "gymnax", None)  # `import gymnax` raises ImportError
    from pgrun.envs.registry import make_env
    with pytest.raises(MissingExtra) as e:
        make_env("gymnax:Breakout-MinAtar")
    assert "pip install 'pgrun[gymnax]'" in str(e.value) and "env=gymnax:Breakout-MinAtar" in str(e.value)


def test_cli_without_gymnax_exits_2_naming_the_extra(tmp_path):
    from cli_helpers import run_cli

    p = run_cli("env=gymnax:Breakout-MinAtar", "policy=cnn", "iterations=1", f"hydra.run.dir={tmp_path}",
                block=("gymnax",))
    assert p.returncode == 2, p.stderr[-2000:]
    assert "pip install 'pgrun[gymnax]'" in p.stderr and "Traceback" not in p.stderr


def test_expand_gymnax_env():
    from pgrun.cli import expand_gym_env

    assert expand_gym_env(["env=gymnax:DeepSea-bsuite", "seed=1"]) == ["env=gymnax", "env.id=DeepSea-bsuite", "seed=1"]
    assert expand_gym_env(["env=gymnax:A,gymnax:B"]) == ["env=gymnax", "env.id=A,B"]


def _episodes(gymnax_id: str, overrides: dict, num_steps: int, num_envs: int = 4, seed: int = 0):
    """Step num_envs copies num_steps times with uniformly random actions, once through gymnax's
    auto-resetting `step` and once through pgrun's `step` / `reset` of the adapter on the same
    keys (gymnax's step splits its key into (step key, reset key)), jitted and vmapped.
    Returns both trajectories as dicts of [num_envs, num_steps, ...] arrays."""
    optional_module("gymnax")
    from pgrun.envs.gymnax_env import GymnaxEnv

    env = GymnaxEnv(gymnax_id)
    params = env.params_from_overrides(overrides)
    T = env.max_episode_steps
    genv = env.gymnax_env
    n_act = genv.action_space(params).n

    def reference(key):
        k0, key = jax.random.split(key)
        obs, state = genv.reset(k0, params)

        def body(c, k):
            state = c
            k_a, k_s = jax.random.split(k)
            a = jax.random.randint(k_a, (), 0, n_act)
            obs, state, r, term, trunc, _ = genv.step(k_s, state, a, params)
            return state, dict(obs=jnp.asarray(obs, jnp.float32).reshape(-1), reward=jnp.float32(r),
                               terminated=term, truncated=trunc)

        _, out = jax.lax.scan(body, state, jax.random.split(key, num_steps))
        return jnp.asarray(obs, jnp.float32).reshape(-1), out

    def ours(key):
        k0, key = jax.random.split(key)
        state, obs = reset(env, params, k0)

        def body(c, k):
            state, t = c
            k_a, k_s = jax.random.split(k)
            a = jax.random.randint(k_a, (), 0, n_act)
            k_step, k_reset = jax.random.split(k_s)
            out = step(env, params, state, a, k_step, t, T)
            done = out.terminated | out.truncated
            s0, obs0 = reset(env, params, k_reset)
            state = jax.tree_util.tree_map(lambda x, y: jnp.where(done, x, y), s0, out.state)
            obs = jnp.where(done, obs0, out.obs)
            return (state, jnp.where(done, 0, t + 1)), dict(obs=obs, reward=out.reward,
                                                             terminated=out.terminated, truncated=out.truncated)

        _, out = jax.lax.scan(body, (state, jnp.int32(0)), jax.random.split(key, num_steps))
        return obs, out

    keys = jax.random.split(jax.random.key(seed), num_envs)
    return jax.jit(jax.vmap(reference))(keys), jax.jit(jax.vmap(ours))(keys)


@pytest.mark.gymnax
@pytest.mark.parametrize("gymnax_id, overrides, num_steps", [
    ("UmbrellaChain-bsuite", {}, 60),                               # chain_length 10: terminates
    ("UmbrellaChain-bsuite", {"max_steps_in_episode": 7}, 60),      # cut before the chain's end: truncated
    ("DeepSea-bsuite", {}, 40),                                     # terminal row and time limit at the same step
    ("MemoryChain-bsuite", {}, 40),
    ("Breakout-MinAtar", {"max_steps_in_episode": 15}, 200),         # image obs, both kinds of episode end
])
def test_parity_with_gymnax_step_over_full_episodes(gymnax_id, overrides, num_steps):
    (ref_obs0, ref), (obs0, got) = _episodes(gymnax_id, overrides, num_steps)
    np.testing.assert_array_equal(obs0, ref_obs0)
    np.testing.assert_array_equal(got["obs"], ref["obs"])  # incl. the reset obs after each episode end
    np.testing.assert_array_equal(got["reward"], ref["reward"])
    np.testing.assert_array_equal(got["terminated"], ref["terminated"])
    # gymnax flags a time-limit step truncated even when it also terminated; pgrun's truncated
    # is "cut by the time limit and not terminated"
    np.testing.assert_array_equal(got["truncated"], np.asarray(ref["truncated"]) & ~np.asarray(ref["terminated"]))
    ends = np.asarray(ref["terminated"] | ref["truncated"])
    assert ends.sum() >= 4, "the trajectories must hold several full episodes"
    if overrides.get("max_steps_in_episode") == 7:
        assert np.asarray(got["truncated"]).any() and not np.asarray(got["terminated"]).any()
    if gymnax_id == "Breakout-MinAtar":
        assert np.asarray(got["truncated"]).any() and np.asarray(got["terminated"]).any()


@pytest.mark.gymnax
def test_spaces_image_shape_and_time_limit_override():
    optional_module("gymnax")
    from pgrun.train.build import build

    parts = build(make_config("env=gymnax:Breakout-MinAtar", "policy=cnn", "+env.params.max_steps_in_episode=77"))
    assert parts.env.image_shape == (10, 10, 4) and parts.env.observation_space.shape == (400,)
    assert parts.env.action_space.n == 3
    assert parts.max_steps == 77 and parts.env_params.max_steps_in_episode == 77
    parts = build(make_config("env=gymnax:DeepSea-bsuite", "policy=mlp"))
    assert parts.env.image_shape is None and parts.max_steps == 8  # DeepSea(size=8): size steps


@pytest.mark.gymnax
@pytest.mark.parametrize("overrides, phrases", [
    (["env=gymnax:Breakout"], ["not a registered gymnax environment", "did you mean Breakout-MinAtar"]),
    (["env=gymnax:DeepSea-bsuite", "+env.params.size=4"], ["env.params", "deterministic"]),
    (["env=gymnax:DeepSea-bsuite", "policy=cnn"], ["policy=cnn needs image observations"]),
])
def test_config_errors(overrides, phrases):
    optional_module("gymnax")
    from pgrun.train.build import build

    with pytest.raises(ConfigError) as e:
        build(make_config(*overrides))
    for p in phrases:
        assert p in str(e.value)


def test_gymnax_without_id_is_a_config_error():
    with pytest.raises(ConfigError, match="env=gymnax:<id>"):
        make_config("env=gymnax")


TINY = ["num_seeds=2", "iterations=2", "episodes_per_iteration=2", "log_every=1", "progress=false",
        "estimator.critic_hidden=[8]"]


@pytest.mark.gymnax
@pytest.mark.parametrize("overrides", [
    ["env=gymnax:Breakout-MinAtar", "policy=cnn", "policy.hidden=[16]", "policy.channels=[4]",
     "estimator=ppo", "+env.params.max_steps_in_episode=30"],
    ["env=gymnax:UmbrellaChain-bsuite", "policy=mlp", "policy.hidden=[8]", "estimator=actor_critic"],
])
def test_two_iteration_runs(overrides, tmp_path):
    optional_module("gymnax")
    import csv
    import math

    from pgrun.runner.loop import run

    run(make_config(*TINY, *overrides), str(tmp_path))
    with open(tmp_path / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4
    for r in rows:
        for k in ("return_mean", "loss", "grad_norm", "entropy"):
            assert math.isfinite(float(r[k])), (k, r)


# ------------------------------------------------------------- reference scores (pgrun-compare)


def _play(gymnax_id: str, policy, seed: int) -> list[float]:
    """One episode of gymnax's own reset / step with default params, the action chosen by
    `policy(state)` from gymnax's env state (an oracle: it may read what the observation hides);
    the rewards up to the episode's end (terminated or gymnax's time limit)."""
    gymnax = optional_module("gymnax")
    env, params = gymnax.make(gymnax_id)
    key = jax.random.key(seed)
    key, k0 = jax.random.split(key)
    _, state = env.reset(k0, params)
    rewards = []
    for _ in range(int(params.max_steps_in_episode)):
        key, k = jax.random.split(key)
        _, next_state, r, term, trunc, _ = env.step(k, state, policy(state), params)
        rewards.append(float(r))
        if term or trunc:
            return rewards
        state = next_state
    raise AssertionError("no episode end within the time limit")


OPTIMAL = {  # gymnax id -> the optimal policy of the env's rules, as a function of gymnax's state
    "DeepSea-bsuite": lambda s: s.action_mapping[s.row, s.column],   # the action that moves right
    "UmbrellaChain-bsuite": lambda s: s.need_umbrella,               # chosen at the first step
    "MemoryChain-bsuite": lambda s: s.context[s.query],              # repeat the context
    "DiscountingChain-bsuite": lambda s: jnp.int32(0),               # context 0 pays 1.1
    "Catch-bsuite": lambda s: 1 + jnp.sign(s.ball_x - s.paddle_x),   # follow the ball
}


@pytest.mark.gymnax
@pytest.mark.parametrize("gymnax_id", sorted(OPTIMAL))
def test_optimal_policy_earns_the_reference_solved_score_in_gymnax(gymnax_id):
    from pgrun.envs.reference_scores import reference_scores

    _, solved = reference_scores(f"gymnax:{gymnax_id}")
    for seed in range(3):
        rewards = _play(gymnax_id, OPTIMAL[gymnax_id], seed)
        if gymnax_id == "UmbrellaChain-bsuite":  # the final +1; the coin flips before it have mean 0
            assert rewards[-1] == solved and len(rewards) == 10
        else:
            assert sum(rewards) == pytest.approx(solved, abs=1e-6), rewards


@pytest.mark.gymnax
def test_reference_table_ids_are_registered_gymnax_envs():
    from pgrun.envs.reference_scores import GYMNAX_SCORES

    gymnax = optional_module("gymnax")
    assert set(GYMNAX_SCORES) <= set(gymnax.registered_envs)
