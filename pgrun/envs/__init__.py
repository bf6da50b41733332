"""Environments: pure-JAX envs (gymnasium FuncEnv + PGEnv facts), the registry and adapters
(gymnasium on the host, any FuncEnv). Importing it registers pgrun's envs with gymnasium
(`gymnasium.make("pgrun/CartPole-v1")`); cheap, no env is built."""

from __future__ import annotations

from pgrun.envs.base import PGEnv, Step, reset, step
from pgrun.envs.gym_register import register_all
from pgrun.envs.registry import ENVS, make_env

register_all()

__all__ = ["ENVS", "PGEnv", "Step", "make_env", "reset", "step"]
