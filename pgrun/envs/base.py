"""The environment interface: gymnasium's functional env plus what a runner needs.

pgrun's environments are `gymnasium.experimental.functional.FuncEnv` subclasses: pure
functions of an explicit state and a params pytree (initial / transition / observation /
reward / terminal), so they vmap, jit, and wrap with gymnasium's `FunctionalJaxEnv`.
A runner also needs a few facts a FuncEnv does not carry; `PGEnv` adds them as class
attributes. Time limits are not part of the env: `step` below keeps *terminated* (the
MDP ended) apart from *truncated* (the time limit cut the episode).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from gymnasium.experimental.functional import FuncEnv

from pgrun.errors import UnknownKeyError


class PGEnv(FuncEnv):
    """A pure-JAX functional env with the facts the runner needs.

    Class attributes:
      name: the config name (`env=<name>`).
      gym_id: the gymnasium id this env reproduces (None for lecture toys).
      max_episode_steps: default time limit (truncation).
      solved_threshold: mean return at which the task counts as solved (None if none).
    Optional method `features(obs, action) -> [J]` gives the env's own feature map x(s, a)
    for linear policies (the moving particle's (x, y, a) of slides 02).
    """

    name: str = ""
    gym_id: str | None = None
    max_episode_steps: int = 1000
    solved_threshold: float | None = None
    default_params: Any  # the subclass's params pytree (FuncEnv types it `Params | None`)

    def __init__(self, options: dict | None = None):
        super().__init__(options)

    def params_from_overrides(self, overrides: dict[str, Any] | None):
        """Default params with `overrides` (from `env.params.<key>=...`) applied."""
        params = self.default_params
        if not overrides:
            return params
        valid = sorted(f for f in params.__dataclass_fields__ if not f.startswith("_"))
        unknown = sorted(set(overrides) - set(valid))
        if unknown:
            raise UnknownKeyError(
                f"env.params: unknown key(s) {unknown} for env {self.name}; "
                f"valid keys: {valid}"
            )
        return params.replace(**{k: type(getattr(params, k))(v) for k, v in overrides.items()})


class Step(NamedTuple):
    """One env step's outputs. Shapes for a single env: obs [*obs_shape], scalars else."""

    state: Any          # env state after the step (before any reset)
    obs: jax.Array      # observation of that state
    reward: jax.Array   # r_t, float32
    terminated: jax.Array  # bool: the MDP reached a terminal state
    truncated: jax.Array   # bool: the time limit cut the episode (and it did not terminate)


def step(env: FuncEnv, params, state, action, key, t, max_steps) -> Step:
    """Advance one env by one step; t is the index of this step within the episode.

    As in gymnasium's FunctionalJaxEnv, one key serves all of the env's functions.

    terminated = terminal(s_{t+1}); truncated = (t + 1 >= max_steps) and not terminated.
    """
    next_state = env.transition(state, action, key, params)
    reward = jnp.asarray(env.reward(state, action, next_state, key, params), jnp.float32)
    terminated = jnp.asarray(env.terminal(next_state, key, params), bool)
    truncated = jnp.logical_and(t + 1 >= max_steps, jnp.logical_not(terminated))
    obs = jnp.asarray(env.observation(next_state, key, params), jnp.float32)
    return Step(next_state, obs, reward, terminated, truncated)


def reset(env: FuncEnv, params, key):
    """Initial (state, obs) of one env."""
    state = env.initial(key, params)
    return state, jnp.asarray(env.observation(state, key, params), jnp.float32)
