"""CartPole-v1 in pure JAX: gymnasium's classic-control dynamics, reward and termination.

Dynamics (Euler, as gymnasium's default `kinematics_integrator="euler"`):
  temp   = (F + m_p l θ̇² sin θ) / (m_c + m_p)
  θ̈      = (g sin θ - cos θ · temp) / (l (4/3 - m_p cos² θ / (m_c + m_p)))
  ẍ      = temp - m_p l θ̈ cos θ / (m_c + m_p)
  x ← x + τ ẋ;  ẋ ← ẋ + τ ẍ;  θ ← θ + τ θ̇;  θ̇ ← θ̇ + τ θ̈
Reward 1 on every step (the terminating one included); terminal when |x| > 2.4 or
|θ| > 12°; 500-step time limit (truncation, handled by the runner).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from gymnasium import spaces

from pgrun.envs.base import PGEnv


@struct.dataclass
class CartPoleParams:
    gravity: float = 9.8
    masscart: float = 1.0
    masspole: float = 0.1
    length: float = 0.5  # half the pole's length
    force_mag: float = 10.0
    tau: float = 0.02
    theta_threshold_radians: float = 12 * 2 * np.pi / 360
    x_threshold: float = 2.4
    init_range: float = 0.05


class CartPole(PGEnv):
    name = "CartPole"
    gym_id = "CartPole-v1"
    max_episode_steps = 500
    solved_threshold = 475.0
    observation_space = spaces.Box(-np.inf, np.inf, shape=(4,), dtype=np.float32)
    action_space = spaces.Discrete(2)

    def get_default_params(self, **kwargs) -> CartPoleParams:
        return CartPoleParams(**kwargs)

    def initial(self, rng, params=None):
        p = params or self.default_params
        return jax.random.uniform(rng, (4,), jnp.float32, -p.init_range, p.init_range)

    def transition(self, state, action, rng=None, params=None):
        p = params or self.default_params
        x, x_dot, theta, theta_dot = state
        force = jnp.where(action == 1, p.force_mag, -p.force_mag)
        total_mass = p.masspole + p.masscart
        polemass_length = p.masspole * p.length
        costheta, sintheta = jnp.cos(theta), jnp.sin(theta)
        temp = (force + polemass_length * theta_dot**2 * sintheta) / total_mass
        thetaacc = (p.gravity * sintheta - costheta * temp) / (
            p.length * (4.0 / 3.0 - p.masspole * costheta**2 / total_mass)
        )
        xacc = temp - polemass_length * thetaacc * costheta / total_mass
        x = x + p.tau * x_dot
        x_dot = x_dot + p.tau * xacc
        theta = theta + p.tau * theta_dot
        theta_dot = theta_dot + p.tau * thetaacc
        return jnp.stack([x, x_dot, theta, theta_dot]).astype(jnp.float32)

    def observation(self, state, rng=None, params=None):
        return state

    def terminal(self, state, rng=None, params=None):
        p = params or self.default_params
        x, theta = state[0], state[2]
        return (jnp.abs(x) > p.x_threshold) | (jnp.abs(theta) > p.theta_threshold_radians)

    def reward(self, state, action, next_state, rng=None, params=None):
        return jnp.float32(1.0)
