"""MountainCar-v0 and MountainCarContinuous-v0 in pure JAX (gymnasium's classic control).

State (x, v), observation = state. One step with acceleration f:
  v ← clip(v + f - gravity · cos(3x), -max_speed, max_speed)
  x ← clip(x + v, min_position, max_position);  v ← 0 if x = min_position and v < 0
Terminal when x ≥ goal_position and v ≥ goal_velocity. Initial x ~ U[init_low, init_high],
v = 0.

MountainCar (discrete a ∈ {0, 1, 2}): f = (a - 1) · force; goal 0.5; reward -1 on every
step (the terminating one included); 200-step limit; solved at -110.
MountainCarContinuous (a ∈ ℝ¹): f = clip(a, min_action, max_action) · power; goal 0.45;
reward 100 · [terminal] - 0.1 a² with the *unclipped* a (as gymnasium); 999-step limit;
solved at 90.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from gymnasium import spaces

from pgrun.envs.base import PGEnv


@struct.dataclass
class MountainCarParams:
    min_position: float = -1.2
    max_position: float = 0.6
    max_speed: float = 0.07
    goal_position: float = 0.5
    goal_velocity: float = 0.0
    force: float = 0.001
    gravity: float = 0.0025
    init_low: float = -0.6
    init_high: float = -0.4


@struct.dataclass
class MountainCarContinuousParams:
    min_action: float = -1.0
    max_action: float = 1.0
    min_position: float = -1.2
    max_position: float = 0.6
    max_speed: float = 0.07
    goal_position: float = 0.45
    goal_velocity: float = 0.0
    power: float = 0.0015
    gravity: float = 0.0025
    init_low: float = -0.6
    init_high: float = -0.4


class MountainCar(PGEnv):
    name = "MountainCar"
    gym_id = "MountainCar-v0"
    max_episode_steps = 200
    solved_threshold = -110.0
    observation_space = spaces.Box(
        np.array([-1.2, -0.07], np.float32), np.array([0.6, 0.07], np.float32), dtype=np.float32
    )
    action_space: spaces.Space = spaces.Discrete(3)

    def get_default_params(self, **kwargs) -> MountainCarParams | MountainCarContinuousParams:
        return MountainCarParams(**kwargs)

    def initial(self, rng, params=None):
        p = params or self.default_params
        x = jax.random.uniform(rng, (), jnp.float32, p.init_low, p.init_high)
        return jnp.stack([x, jnp.zeros_like(x)])

    def _force(self, action, p):
        return (action - 1) * p.force

    def transition(self, state, action, rng=None, params=None):
        p = params or self.default_params
        position, velocity = state
        velocity = velocity + (self._force(action, p) + jnp.cos(3 * position) * (-p.gravity))
        velocity = jnp.clip(velocity, -p.max_speed, p.max_speed)
        position = jnp.clip(position + velocity, p.min_position, p.max_position)
        velocity = jnp.where((position == p.min_position) & (velocity < 0), 0.0, velocity)
        return jnp.stack([position, velocity]).astype(jnp.float32)

    def observation(self, state, rng=None, params=None):
        return state

    def terminal(self, state, rng=None, params=None):
        p = params or self.default_params
        return (state[0] >= p.goal_position) & (state[1] >= p.goal_velocity)

    def reward(self, state, action, next_state, rng=None, params=None):
        return jnp.float32(-1.0)


class MountainCarContinuous(MountainCar):
    name = "MountainCarContinuous"
    gym_id = "MountainCarContinuous-v0"
    max_episode_steps = 999
    solved_threshold = 90.0
    action_space = spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)

    def get_default_params(self, **kwargs) -> MountainCarContinuousParams:
        return MountainCarContinuousParams(**kwargs)

    def _force(self, action, p):
        return jnp.clip(action[0], p.min_action, p.max_action) * p.power

    def reward(self, state, action, next_state, rng=None, params=None):
        bonus = jnp.where(self.terminal(next_state, params=params), 100.0, 0.0)
        return (bonus - action[0] ** 2 * 0.1).astype(jnp.float32)
