"""Pendulum-v1 in pure JAX: gymnasium's torque-limited swing-up.

State (θ, θ̇), θ = 0 upright; action a ∈ ℝ¹, torque u = clip(a, -max_torque, max_torque):
  θ̇ ← clip(θ̇ + (3g / (2l) sin θ + 3 / (m l²) u) dt, -max_speed, max_speed)
  θ ← θ + θ̇ dt   (the new θ̇; θ itself is never wrapped)
Reward -(norm(θ)² + 0.1 θ̇² + 0.001 u²) of the state *before* the step, with
norm(θ) = ((θ + π) mod 2π) - π. Observation [cos θ, sin θ, θ̇]. Never terminates;
200-step time limit; solved at -200 (gymnasium sets no threshold). Initial
θ ~ U[-init_theta, init_theta] (π), θ̇ ~ U[-init_theta_dot, init_theta_dot] (1).
The action space stays Box(-2, 2) when max_torque is overridden.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from gymnasium import spaces

from pgrun.envs.base import PGEnv


@struct.dataclass
class PendulumParams:
    max_speed: float = 8.0
    max_torque: float = 2.0
    dt: float = 0.05
    g: float = 10.0
    m: float = 1.0
    l: float = 1.0  # noqa: E741 (gymnasium's name)
    init_theta: float = np.pi
    init_theta_dot: float = 1.0


def angle_normalize(x):
    """Angle in [-π, π), as gymnasium's `angle_normalize`."""
    return ((x + jnp.pi) % (2 * jnp.pi)) - jnp.pi


class Pendulum(PGEnv):
    name = "Pendulum"
    gym_id = "Pendulum-v1"
    max_episode_steps = 200
    solved_threshold = -200.0
    observation_space = spaces.Box(
        -np.array([1, 1, 8], np.float32), np.array([1, 1, 8], np.float32), dtype=np.float32
    )
    action_space = spaces.Box(-2.0, 2.0, shape=(1,), dtype=np.float32)

    def get_default_params(self, **kwargs) -> PendulumParams:
        return PendulumParams(**kwargs)

    def initial(self, rng, params=None):
        p = params or self.default_params
        high = jnp.array([p.init_theta, p.init_theta_dot], jnp.float32)
        return jax.random.uniform(rng, (2,), jnp.float32, -high, high)

    def transition(self, state, action, rng=None, params=None):
        p = params or self.default_params
        th, thdot = state
        u = jnp.clip(action, -p.max_torque, p.max_torque)[0]
        newthdot = thdot + (3 * p.g / (2 * p.l) * jnp.sin(th) + 3.0 / (p.m * p.l**2) * u) * p.dt
        newthdot = jnp.clip(newthdot, -p.max_speed, p.max_speed)
        newth = th + newthdot * p.dt
        return jnp.stack([newth, newthdot]).astype(jnp.float32)

    def observation(self, state, rng=None, params=None):
        th, thdot = state
        return jnp.stack([jnp.cos(th), jnp.sin(th), thdot])

    def terminal(self, state, rng=None, params=None):
        return jnp.bool_(False)

    def reward(self, state, action, next_state, rng=None, params=None):
        p = params or self.default_params
        th, thdot = state
        u = jnp.clip(action, -p.max_torque, p.max_torque)[0]
        costs = angle_normalize(th) ** 2 + 0.1 * thdot**2 + 0.001 * (u**2)
        return (-costs).astype(jnp.float32)
