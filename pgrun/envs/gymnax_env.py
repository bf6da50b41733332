"""Any registered gymnax environment as a pgrun env: `env=gymnax:<id>` (optional extra `pgrun[gymnax]`).

gymnax (bsuite, MinAtar, classic control, misc) writes its envs as pure JAX functions, so they
run inside pgrun's jitted, vmapped program like pgrun's own envs. The adapter calls gymnax's raw
`reset_env` / `step_env`, never its auto-resetting `step`: pgrun keeps control of resets and of
the time limit. gymnax 1.x's `step_env` returns the MDP's natural termination only (its time
limit lives in `is_truncated`, applied by `step`), so `terminated` is gymnax's and `truncated`
is pgrun's (`pgrun.envs.base.step`, at t + 1 = T).

  T (pgrun's time limit) = env.max_episode_steps if set, else the env's params.max_steps_in_episode
  (after `env.params.*` overrides, e.g. env.params.max_steps_in_episode=500).

Observations are flattened to float32 [obs_dim] (MinAtar's [10, 10, C] boolean images too), so
the MLP policy and every batch layout take them as they are; `image_shape` keeps the original
[H, W, C] for `policy=cnn`. One key serves step_env, as in `pgrun.envs.base.step`; reset_env gets
the reset key. Constructor arguments (e.g. DeepSea's size) keep gymnax's defaults.
"""

from __future__ import annotations

import difflib
import importlib
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from gymnasium import spaces

from pgrun.core.names import GYMNAX_PREFIX
from pgrun.envs.base import PGEnv
from pgrun.errors import ConfigError, MissingExtra, UnknownKeyError


class GymnaxState(NamedTuple):
    """The adapter's state: gymnax's state and what its last step_env returned with it."""

    inner: Any             # gymnax's EnvState
    obs: jax.Array         # gymnax's observation of `inner` (its own shape and dtype)
    reward: jax.Array      # the reward of the step that led to `inner` (0 after a reset)
    terminated: jax.Array  # bool: gymnax's natural termination of that step


def import_gymnax(feature: str):
    """The gymnax module, or MissingExtra naming `pip install 'pgrun[gymnax]'`."""
    try:
        return importlib.import_module("gymnax")
    except ImportError as e:  # also gymnax's own missing imports (e.g. six)
        raise MissingExtra.needs(feature, f"the gymnax package ({e})", "gymnax",
                                 "use one of pgrun's own envs (pgrun --help lists them)") from None


def gym_space(space) -> spaces.Discrete | spaces.Box:
    """gymnax's Discrete / Box -> gymnasium's (float32 Box)."""
    if hasattr(space, "n"):
        return spaces.Discrete(int(space.n))
    shape = tuple(int(d) for d in space.shape)
    low = np.broadcast_to(np.asarray(space.low, np.float32), shape)
    high = np.broadcast_to(np.asarray(space.high, np.float32), shape)
    return spaces.Box(low, high, shape, np.float32)


class GymnaxEnv(PGEnv):
    """A gymnax environment behind gymnasium's FuncEnv interface (see the module docstring).

    name: `gymnax:<id>`; max_episode_steps: params.max_steps_in_episode; solved_threshold: None;
    observation_space: Box float32 [obs_dim]; image_shape: gymnax's [H, W, C] when the
    observation is an image (None otherwise).
    """

    def __init__(self, gymnax_id: str):
        gymnax = import_gymnax(f"env={GYMNAX_PREFIX}{gymnax_id}")
        if gymnax_id not in gymnax.registered_envs:
            close = difflib.get_close_matches(gymnax_id, gymnax.registered_envs, n=5, cutoff=0.5)
            raise UnknownKeyError(
                f"env={GYMNAX_PREFIX}{gymnax_id}: '{gymnax_id}' is not a registered gymnax environment"
                f"{'; did you mean ' + ', '.join(close) + '?' if close else '.'} "
                f"Valid ids (gymnax.registered_envs): {', '.join(sorted(gymnax.registered_envs))}.")
        self.gymnax_env, params = gymnax.make(gymnax_id)
        super().__init__()
        self.name = GYMNAX_PREFIX + gymnax_id
        self.gymnax_id = gymnax_id
        self.default_params = params
        self.max_episode_steps = int(params.max_steps_in_episode)
        raw_obs = self.gymnax_env.observation_space(params)
        shape = tuple(int(d) for d in raw_obs.shape)
        self.image_shape = shape if len(shape) == 3 else None
        self.observation_space = spaces.Box(-np.inf, np.inf, (int(np.prod(shape)),), np.float32)
        self.action_space = gym_space(self.gymnax_env.action_space(params))

    def params_from_overrides(self, overrides: dict[str, Any] | None):
        """gymnax's default params with `env.params.<key>` overrides; the time limit follows
        params.max_steps_in_episode."""
        params = self.default_params
        if overrides:
            valid = sorted(params.__dataclass_fields__)
            unknown = sorted(set(overrides) - set(valid))
            if unknown:
                raise UnknownKeyError(f"env.params: unknown key(s) {unknown} for env {self.name}; "
                                      f"valid keys: {valid}")
            params = params.replace(**{k: _like(getattr(params, k), v, k) for k, v in overrides.items()})
        self.max_episode_steps = int(params.max_steps_in_episode)
        return params

    # FuncEnv's five functions; `rng` is the step's key
    def initial(self, rng, params=None):
        obs, inner = self.gymnax_env.reset_env(rng, params)
        return GymnaxState(inner, obs, jnp.float32(0.0), jnp.bool_(False))

    def transition(self, state: GymnaxState, action, rng, params=None):
        obs, inner, reward, terminated, _ = self.gymnax_env.step_env(rng, state.inner, action, params)
        return GymnaxState(inner, obs, jnp.asarray(reward, jnp.float32), jnp.asarray(terminated, bool))

    def observation(self, state: GymnaxState, rng, params=None):
        return jnp.asarray(state.obs, jnp.float32).reshape(-1)

    def reward(self, state, action, next_state: GymnaxState, rng, params=None):
        return next_state.reward

    def terminal(self, state: GymnaxState, rng, params=None):
        return state.terminated


def _like(old: Any, value: Any, key: str) -> Any:
    """`value` with the type of the param it replaces (a Python scalar or a JAX array)."""
    try:
        if isinstance(old, (jax.Array, np.ndarray)):
            return jnp.asarray(value, old.dtype).reshape(old.shape)
        return type(old)(value)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"env.params.{key}={value!r}: cannot convert to the type of the default "
                          f"{old!r} ({e}).") from None


def make_gymnax_env(gymnax_id: str) -> GymnaxEnv:
    """`env=gymnax:<id>` -> the adapter.  ConfigError if gymnax is missing or the id unknown."""
    return GymnaxEnv(gymnax_id)
