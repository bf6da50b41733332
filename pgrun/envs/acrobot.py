"""Acrobot-v1 in pure JAX: gymnasium's two-link swing-up ("book" dynamics, RK4).

State s = (θ1, θ2, θ̇1, θ̇2): θ1 is link 1's angle from hanging down, θ2 link 2's angle
relative to link 1. Torque τ = a - 1 ∈ {-1, 0, +1} on the middle joint (plus uniform noise
in ±torque_noise_max, 0 by default). With c2 = cos θ2:
  d1   = m1 lc1² + m2 (l1² + lc2² + 2 l1 lc2 c2) + I1 + I2
  d2   = m2 (lc2² + l1 lc2 c2) + I2
  φ2   = m2 lc2 g cos(θ1 + θ2 - π/2)
  φ1   = -m2 l1 lc2 θ̇2² sin θ2 - 2 m2 l1 lc2 θ̇2 θ̇1 sin θ2
         + (m1 lc1 + m2 l1) g cos(θ1 - π/2) + φ2
  θ̈2   = (τ + d2/d1 φ1 - m2 l1 lc2 θ̇1² sin θ2 - φ2) / (m2 lc2² + I2 - d2²/d1)
  θ̈1   = -(d2 θ̈2 + φ1) / d1
One RK4 step of length dt (gymnasium's `rk4` over t = [0, dt], τ held constant), then
θ1, θ2 wrapped into [-π, π] and θ̇1, θ̇2 clipped to ±max_vel_1, ±max_vel_2 (4π, 9π).
I1 = I2 = link_moi. Link 2's length only matters for rendering, so it is no param.
Observation [cos θ1, sin θ1, cos θ2, sin θ2, θ̇1, θ̇2]. Terminal when the tip is above
the bar: -cos θ1 - cos(θ1 + θ2) > 1. Reward -1 per step, 0 on the terminating step;
500-step time limit; solved at -100. Initial state uniform in ±init_range (0.1).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from gymnasium import spaces

from pgrun.envs.base import PGEnv


@struct.dataclass
class AcrobotParams:
    dt: float = 0.2
    link_length_1: float = 1.0
    link_mass_1: float = 1.0
    link_mass_2: float = 1.0
    link_com_pos_1: float = 0.5
    link_com_pos_2: float = 0.5
    link_moi: float = 1.0
    max_vel_1: float = 4 * np.pi
    max_vel_2: float = 9 * np.pi
    gravity: float = 9.8
    torque_noise_max: float = 0.0
    init_range: float = 0.1


def _wrap(x, m, M):
    """gymnasium's `wrap`: shift x by whole periods M - m until m <= x <= M."""
    diff = M - m
    x = jnp.where(x > M, x - diff * jnp.ceil((x - M) / diff), x)
    return jnp.where(x < m, x + diff * jnp.ceil((m - x) / diff), x)


_OBS_HIGH = np.array([1, 1, 1, 1, 4 * np.pi, 9 * np.pi], np.float32)


class Acrobot(PGEnv):
    name = "Acrobot"
    gym_id = "Acrobot-v1"
    max_episode_steps = 500
    solved_threshold = -100.0
    observation_space = spaces.Box(-_OBS_HIGH, _OBS_HIGH, dtype=np.float32)
    action_space = spaces.Discrete(3)

    def get_default_params(self, **kwargs) -> AcrobotParams:
        return AcrobotParams(**kwargs)

    def initial(self, rng, params=None):
        p = params or self.default_params
        return jax.random.uniform(rng, (4,), jnp.float32, -p.init_range, p.init_range)

    def _dsdt(self, s, torque, p):
        m1, m2, l1 = p.link_mass_1, p.link_mass_2, p.link_length_1
        lc1, lc2, I1, I2, g = p.link_com_pos_1, p.link_com_pos_2, p.link_moi, p.link_moi, p.gravity
        theta1, theta2, dtheta1, dtheta2 = s
        d1 = m1 * lc1**2 + m2 * (l1**2 + lc2**2 + 2 * l1 * lc2 * jnp.cos(theta2)) + I1 + I2
        d2 = m2 * (lc2**2 + l1 * lc2 * jnp.cos(theta2)) + I2
        phi2 = m2 * lc2 * g * jnp.cos(theta1 + theta2 - jnp.pi / 2.0)
        phi1 = (
            -m2 * l1 * lc2 * dtheta2**2 * jnp.sin(theta2)
            - 2 * m2 * l1 * lc2 * dtheta2 * dtheta1 * jnp.sin(theta2)
            + (m1 * lc1 + m2 * l1) * g * jnp.cos(theta1 - jnp.pi / 2)
            + phi2
        )
        ddtheta2 = (
            torque + d2 / d1 * phi1 - m2 * l1 * lc2 * dtheta1**2 * jnp.sin(theta2) - phi2
        ) / (m2 * lc2**2 + I2 - d2**2 / d1)
        ddtheta1 = -(d2 * ddtheta2 + phi1) / d1
        return jnp.stack([dtheta1, dtheta2, ddtheta1, ddtheta2])

    def transition(self, state, action, rng, params=None):
        p = params or self.default_params
        noise = jax.random.uniform(rng, (), jnp.float32, -p.torque_noise_max, p.torque_noise_max)
        torque = jnp.asarray(action, jnp.float32) - 1.0 + noise
        dt, dt2 = p.dt, p.dt / 2.0
        k1 = self._dsdt(state, torque, p)
        k2 = self._dsdt(state + dt2 * k1, torque, p)
        k3 = self._dsdt(state + dt2 * k2, torque, p)
        k4 = self._dsdt(state + dt * k3, torque, p)
        ns = state + dt / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)
        return jnp.stack([
            _wrap(ns[0], -jnp.pi, jnp.pi),
            _wrap(ns[1], -jnp.pi, jnp.pi),
            jnp.clip(ns[2], -p.max_vel_1, p.max_vel_1),
            jnp.clip(ns[3], -p.max_vel_2, p.max_vel_2),
        ]).astype(jnp.float32)

    def observation(self, state, rng=None, params=None):
        theta1, theta2, dtheta1, dtheta2 = state
        return jnp.stack([
            jnp.cos(theta1), jnp.sin(theta1), jnp.cos(theta2), jnp.sin(theta2), dtheta1, dtheta2
        ])

    def terminal(self, state, rng=None, params=None):
        return -jnp.cos(state[0]) - jnp.cos(state[1] + state[0]) > 1.0

    def reward(self, state, action, next_state, rng=None, params=None):
        return jnp.where(self.terminal(next_state), 0.0, -1.0).astype(jnp.float32)
