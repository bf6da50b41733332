"""MountainCar(-Continuous) parity with gymnasium's NumPy envs, step by step over full episodes."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from parity import run_parity

from pgrun.envs import make_env, reset

DISCRETE = {
    "random": lambda obs, rng: int(rng.integers(3)),
    "biased": lambda obs, rng: int(rng.choice(3, p=[0.7, 0.2, 0.1])),
    "pumping": lambda obs, rng: 2 if obs[1] >= 0 else 0,  # push along v: reaches the goal
}
CONTINUOUS = {  # actions beyond [-1, 1] exercise the clipping in the transition
    "random": lambda obs, rng: rng.uniform(-1.5, 1.5, 1).astype(np.float32),
    "biased": lambda obs, rng: rng.normal(-0.5, 1.0, 1).astype(np.float32),
    "pumping": lambda obs, rng: np.array([1.2 if obs[1] >= 0 else -1.2], np.float32),
}


def _check_outcomes(policy, episodes, limit):
    if policy == "pumping":
        assert all(e.terminated for e in episodes)
        # its first swing back reaches the left wall, exercising the velocity reset there
        obs = np.concatenate([e.obs for e in episodes])
        assert np.any((obs[:, 0] == np.float32(-1.2)) & (obs[:, 1] == 0))
    else:
        assert any(e.truncated and len(e.obs) == limit for e in episodes)


@pytest.mark.parametrize("policy", sorted(DISCRETE))
def test_mountain_car_matches_gymnasium(policy):
    episodes = run_parity("MountainCar", DISCRETE[policy])
    _check_outcomes(policy, episodes, 200)


@pytest.mark.parametrize("policy", sorted(CONTINUOUS))
def test_mountain_car_continuous_matches_gymnasium(policy):
    episodes = run_parity("MountainCarContinuous", CONTINUOUS[policy])
    _check_outcomes(policy, episodes, 999)


@pytest.mark.parametrize(
    "name, policies", [("MountainCar", DISCRETE), ("MountainCarContinuous", CONTINUOUS)]
)
def test_goal_velocity_override_matches_gymnasium(name, policies):
    """goal_velocity is a gymnasium constructor argument; force/power only an attribute."""
    attr = "force" if name == "MountainCar" else "power"
    episodes = run_parity(name, policies["pumping"], n_episodes=3,
                          overrides={"goal_velocity": 0.03, attr: 0.002},
                          gym_kwargs={"goal_velocity": 0.03}, gym_attrs={attr: 0.002})
    assert all(e.terminated and e.obs[-1, 1] >= 0.03 for e in episodes)


@pytest.mark.parametrize("name", ["MountainCar", "MountainCarContinuous"])
def test_reset_distribution(name):
    env = make_env(name)
    keys = jax.random.split(jax.random.PRNGKey(0), 1000)
    _, obs = jax.jit(jax.vmap(lambda k: reset(env, env.default_params, k)))(keys)
    assert obs.shape == (1000, 2) and obs.dtype == jnp.float32
    assert float(obs[:, 0].min()) >= -0.6 and float(obs[:, 0].max()) <= -0.4
    assert float(obs[:, 0].max() - obs[:, 0].min()) > 0.19 and not obs[:, 1].any()
