"""Environment registry: config name -> PGEnv class."""

from __future__ import annotations

from pgrun.envs.base import PGEnv, Step, reset, step
from pgrun.envs.cartpole import CartPole
from pgrun.envs.chain import Chain

ENVS: dict[str, type[PGEnv]] = {
    CartPole.name: CartPole,
    Chain.name: Chain,
}


def make_env(name: str) -> PGEnv:
    """Instantiate the env registered as `name` (raises KeyError listing valid names)."""
    if name not in ENVS:
        raise KeyError(f"env={name} is not a known environment; valid choices: {sorted(ENVS)}")
    return ENVS[name]()


__all__ = ["ENVS", "PGEnv", "Step", "make_env", "reset", "step"]
