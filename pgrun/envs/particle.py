"""The moving particle of slides 02, in 2-D: steer a particle at (x, y) to the goal at 0.

Each step moves the particle by `speed`·u (position clipped to the box [-box, box]²):
  Particle:            u = d_a, the unit vector of one of `num_directions` directions
  ParticleContinuous:  u = a ∈ [-1, 1]² (clipped by the runner)
Reward for approaching the goal: r_t = ‖p_t‖ - ‖p_{t+1}‖, plus `goal_bonus` on arrival;
terminated when ‖p_{t+1}‖ < goal_radius; 50-step time limit.
Features (slides 02: x(s, a) = [x, y, a]), with the action entering as its direction:
  x(s, a) = [x, y, 1] ⊗ d_a, so θᵀx(s, a) = d_a · W [x, y, 1] — a linear policy can point at 0.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from gymnasium import spaces

from pgrun.envs.base import PGEnv


@struct.dataclass
class ParticleParams:
    speed: float = 0.1
    box: float = 2.0
    start_range: float = 1.0
    goal_radius: float = 0.1
    goal_bonus: float = 1.0


class _ParticleBase(PGEnv):
    max_episode_steps = 50
    observation_space = spaces.Box(-2.0, 2.0, shape=(2,), dtype=np.float32)

    def get_default_params(self, **kwargs) -> ParticleParams:
        return ParticleParams(**kwargs)

    def initial(self, rng, params=None):
        p = params or self.default_params
        return jax.random.uniform(rng, (2,), jnp.float32, -p.start_range, p.start_range)

    def move(self, state, u, params):
        p = params or self.default_params
        return jnp.clip(state + p.speed * u, -p.box, p.box)

    def observation(self, state, rng=None, params=None):
        return state

    def terminal(self, state, rng=None, params=None):
        p = params or self.default_params
        return jnp.linalg.norm(state) < p.goal_radius

    def reward(self, state, action, next_state, rng=None, params=None):
        p = params or self.default_params
        arrived = jnp.linalg.norm(next_state) < p.goal_radius
        return jnp.linalg.norm(state) - jnp.linalg.norm(next_state) + jnp.where(arrived, p.goal_bonus, 0.0)


class Particle(_ParticleBase):
    name = "Particle"
    num_directions = 8
    action_space = spaces.Discrete(8)

    def direction(self, a):
        angle = 2 * jnp.pi * a / self.num_directions
        return jnp.stack([jnp.cos(angle), jnp.sin(angle)]).astype(jnp.float32)

    def transition(self, state, action, rng=None, params=None):
        return self.move(state, self.direction(action), params)

    def features(self, obs, a):
        """x(s, a) = [x, y, 1] ⊗ d_a.  obs [2], a [] -> [6]."""
        s1 = jnp.concatenate([obs, jnp.ones((1,), obs.dtype)])
        return (s1[:, None] * self.direction(a)[None, :]).reshape(-1)


class ParticleContinuous(_ParticleBase):
    name = "ParticleContinuous"
    action_space = spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)

    def transition(self, state, action, rng=None, params=None):
        return self.move(state, jnp.asarray(action, jnp.float32), params)
