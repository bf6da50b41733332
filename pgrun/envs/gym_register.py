"""pgrun's envs as ordinary gymnasium envs: `gymnasium.make("pgrun/<Name>-v<k>")`.

Each env is wrapped in gymnasium's `FunctionalJaxEnv` (its methods jitted) and registered
with the version of the gymnasium env it reproduces (`pgrun/CartPole-v1`, ...) and its
`max_episode_steps`, so `gymnasium.make` adds the TimeLimit wrapper that truncates.
Keyword arguments to `make` override env params: `make("pgrun/Pendulum-v1", g=9.81)`.
"""

from __future__ import annotations

import functools
from typing import cast

import gymnasium
import jax
from gymnasium.envs.functional_jax_env import FunctionalJaxEnv

from pgrun.envs.base import PGEnv
from pgrun.envs.registry import ENVS, make_env


def gym_id(name: str) -> str:
    """`pgrun/<name>-v<k>`, k the version of the reproduced gymnasium id (0 if none)."""
    reproduced = ENVS[name].gym_id
    version = reproduced.rsplit("-v", 1)[1] if reproduced else "0"
    return f"pgrun/{name}-v{version}"


def make_gym_env(name: str, render_mode: str | None = None, **params) -> FunctionalJaxEnv:
    """pgrun env `name` as a (stateful, jitted) gymnasium env with params overridden."""
    env = cast(PGEnv, make_env(name))  # an ENVS name: never a HostEnv
    env.default_params = env.params_from_overrides(params)
    env.transform(jax.jit)
    return FunctionalJaxEnv(env, metadata={"render_modes": [], "jax": True}, render_mode=render_mode)


def register_all() -> None:
    """Register every env in ENVS with gymnasium (idempotent)."""
    for name, cls in ENVS.items():
        if gym_id(name) in gymnasium.registry:
            continue
        gymnasium.register(
            id=gym_id(name),
            entry_point=functools.partial(make_gym_env, name),
            max_episode_steps=cls.max_episode_steps,
            reward_threshold=cls.solved_threshold,
            disable_env_checker=True,  # it wants NumPy obs; as gymnasium's own phys2d envs
        )
