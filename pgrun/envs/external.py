"""Any gymnasium `FuncEnv` written elsewhere as a pgrun env: `env=func:<module>:<Class>`.

The class is imported and given the facts a runner needs (name, time limit, no solved
threshold) without touching its code, e.g. gymnasium's own JAX pendulum:
  pgrun env=func:gymnasium.envs.phys2d.pendulum:PendulumFunctional env.max_episode_steps=200
Its time limit is `env.max_episode_steps` (default 1000: a FuncEnv carries none).
"""

from __future__ import annotations

import importlib

from gymnasium.experimental.functional import FuncEnv

from pgrun.envs.base import PGEnv
from pgrun.errors import ConfigError


def make_func_env(spec: str) -> PGEnv:
    """`module:Class` -> an instance of Class that is also a PGEnv.  Raises ConfigError."""
    module_name, _, cls_name = spec.partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), cls_name)
    except (ImportError, AttributeError, ValueError) as e:
        raise ConfigError(
            f"env=func:{spec}: cannot import {cls_name or '<Class>'} from {module_name or '<module>'} ({e}); "
            "write env=func:<module>:<Class>, e.g. env=func:gymnasium.envs.phys2d.pendulum:PendulumFunctional."
        ) from None
    if not (isinstance(cls, type) and issubclass(cls, FuncEnv)):
        raise ConfigError(f"env=func:{spec}: {cls!r} is not a gymnasium FuncEnv subclass.")
    if issubclass(cls, PGEnv):
        return cls()
    adapted = type(cls.__name__, (cls, PGEnv), {"name": f"func:{spec}", "__module__": cls.__module__})
    return adapted()
