"""The env registry: config name -> env class, and `make_env` for every kind of env name."""

from __future__ import annotations

from pgrun.envs.acrobot import Acrobot
from pgrun.envs.bandit import Bandit
from pgrun.envs.base import PGEnv
from pgrun.envs.cartpole import CartPole
from pgrun.envs.chain import Chain
from pgrun.envs.external import make_func_env
from pgrun.envs.gymnax_env import GYMNAX_PREFIX, make_gymnax_env
from pgrun.envs.host import HostEnv, make_host_env
from pgrun.envs.mountain_car import MountainCar, MountainCarContinuous
from pgrun.envs.particle import Particle, ParticleContinuous
from pgrun.envs.pendulum import Pendulum
from pgrun.envs.tokens import Tokens
from pgrun.errors import UnknownKeyError

ENVS: dict[str, type[PGEnv]] = {
    cls.name: cls for cls in (CartPole, Acrobot, MountainCar, MountainCarContinuous, Pendulum,
                              Bandit, Particle, ParticleContinuous, Chain, Tokens)
}


def make_env(name: str, options: dict | None = None) -> PGEnv | HostEnv:
    """Instantiate the env registered as `name` (UnknownKeyError, a ConfigError, lists the valid names).

    `gym:<id>` gives a `HostEnv` (pgrun/envs/host.py): any gymnasium env, stepped on the host;
    `func:<module>:<Class>` any gymnasium FuncEnv, in JAX like pgrun's own (pgrun/envs/external.py);
    `gymnax:<id>` any registered gymnax env, in JAX too (pgrun/envs/gymnax_env.py).
    `options`: constructor options of a registered env (Tokens: task, prompt_len, vocab, horizon).
    """
    if name.startswith("gym:"):
        return make_host_env(name[len("gym:"):])
    if name.startswith("func:"):
        return make_func_env(name[len("func:"):])
    if name.startswith(GYMNAX_PREFIX):
        return make_gymnax_env(name[len(GYMNAX_PREFIX):])
    if name not in ENVS:
        raise UnknownKeyError(f"env={name} is not a known environment; valid choices: {sorted(ENVS)}")
    return ENVS[name](options) if options else ENVS[name]()
