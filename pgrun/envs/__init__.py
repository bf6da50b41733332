"""Environment registry: config name -> PGEnv class."""

from __future__ import annotations

from pgrun.envs.base import PGEnv, Step, reset, step
from pgrun.envs.acrobot import Acrobot
from pgrun.envs.bandit import Bandit
from pgrun.envs.cartpole import CartPole
from pgrun.envs.chain import Chain
from pgrun.envs.mountain_car import MountainCar, MountainCarContinuous
from pgrun.envs.particle import Particle, ParticleContinuous
from pgrun.envs.pendulum import Pendulum

ENVS: dict[str, type[PGEnv]] = {
    cls.name: cls for cls in (CartPole, Acrobot, MountainCar, MountainCarContinuous, Pendulum,
                              Bandit, Particle, ParticleContinuous, Chain)
}


def make_env(name: str) -> PGEnv:
    """Instantiate the env registered as `name` (raises KeyError listing valid names).

    `gym:<id>` gives a `HostEnv` (pgrun/envs/host.py): any gymnasium env, stepped on the host.
    """
    if name.startswith("gym:"):
        from pgrun.envs.host import make_host_env

        return make_host_env(name[len("gym:"):])
    if name not in ENVS:
        raise KeyError(f"env={name} is not a known environment; valid choices: {sorted(ENVS)}")
    return ENVS[name]()


# cheap (no env is built): makes gymnasium.make("pgrun/CartPole-v1") etc. available
from pgrun.envs.gym_register import register_all  # noqa: E402

register_all()

__all__ = ["ENVS", "PGEnv", "Step", "make_env", "reset", "step"]
