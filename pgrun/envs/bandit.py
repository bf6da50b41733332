"""The two-state one-step bandit of notes 03 ("Example: Raw Returns").

s ∈ {s1, s2}, each with probability ½, observed as one_hot(s); actions {a1, a2};
reward table   s1: a1 → 12, a2 → 7      s2: a1 → 2, a2 → 5.
Every episode is one step and ends in termination, so reward and return coincide and
J(θ) = ½ Σ_s Σ_a π_θ(a|s) R(s, a) is known exactly (see `exact_J`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from gymnasium import spaces

from pgrun.envs.base import PGEnv

RAW_RETURNS = ((12.0, 7.0), (2.0, 5.0))


@struct.dataclass
class BanditParams:
    rewards: jax.Array = struct.field(default_factory=lambda: jnp.asarray(RAW_RETURNS, jnp.float32))
    p_s1: float = 0.5


class Bandit(PGEnv):
    name = "Bandit"
    max_episode_steps = 1
    solved_threshold = 8.5  # the optimal policy's J = ½(12 + 5)
    observation_space = spaces.Box(0.0, 1.0, shape=(2,), dtype=np.float32)
    action_space = spaces.Discrete(2)

    def get_default_params(self, **kwargs) -> BanditParams:
        return BanditParams(**kwargs)

    def initial(self, rng, params=None):
        p = params or self.default_params
        s = jnp.where(jax.random.uniform(rng) < p.p_s1, 0, 1)
        return {"s": s.astype(jnp.int32), "done": jnp.bool_(False)}

    def transition(self, state, action, rng=None, params=None):
        return {"s": state["s"], "done": jnp.bool_(True)}

    def observation(self, state, rng=None, params=None):
        return jax.nn.one_hot(state["s"], 2, dtype=jnp.float32)

    def terminal(self, state, rng=None, params=None):
        return state["done"]

    def reward(self, state, action, next_state, rng=None, params=None):
        p = params or self.default_params
        return p.rewards[state["s"], action]


def exact_J(dist_fn, params, env_params: BanditParams | None = None) -> jax.Array:
    """J(θ) = Σ_s p(s) Σ_a π_θ(a|s) R(s,a), for a policy given as dist_fn(params, obs).

    Its autodiff gradient is the exact ∇J(θ).
    """
    p = env_params or BanditParams()
    obs = jnp.eye(2, dtype=jnp.float32)
    pi = jnp.exp(dist_fn(params, obs).log_probs())  # [2 states, 2 actions]
    p_s = jnp.stack([p.p_s1, 1.0 - p.p_s1])
    return jnp.sum(p_s[:, None] * pi * p.rewards)
