"""Vmapped hyperparameter sweeps: a grid of points x seeds flattened onto one run axis.

`pgrun sweep.optimizer.lr=[1e-3,1e-2] sweep.gamma=[0.99,0.999]` is a 2 x 2 grid. With S
seeds, run r = p·S + s trains seed `seed + s` at point p (every point sees the same seeds).
A point's values are written into each run's TrainState by `apply_point` (its Hyperparams, the
learning rate that `optax.inject_hyperparams` keeps in the optimizer state, or kl_penalty's
initial β in TrainState.extra), so they are traced arrays of the one compiled program, never
constants baked into it.
"""

from __future__ import annotations

import itertools
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from pgrun.config.schema import Config
from pgrun.config.validate import SWEEP_RULES, swept_values
from pgrun.train.program import Trainer, init_seeds
from pgrun.train.state import TrainState

_INJECT = (optax.InjectHyperparamsState, optax.InjectStatefulHyperparamsState)


def set_learning_rate(opt_state, lr):
    """Replace the learning rate in every inject_hyperparams state inside `opt_state`."""

    def put(node):
        if isinstance(node, _INJECT) and "learning_rate" in node.hyperparams:
            old = node.hyperparams["learning_rate"]
            return node._replace(hyperparams={**node.hyperparams, "learning_rate": jnp.asarray(lr, old.dtype)})
        return node

    return jax.tree_util.tree_map(put, opt_state, is_leaf=lambda n: isinstance(n, _INJECT))


def learning_rate(opt_state):
    """The learning rate held by the (first) inject_hyperparams state inside `opt_state`."""
    found = [n.hyperparams["learning_rate"] for n in jax.tree_util.tree_leaves(
        opt_state, is_leaf=lambda n: isinstance(n, _INJECT)) if isinstance(n, _INJECT)]
    return found[0]


def _hp(name: str) -> Callable:
    return lambda state, v: state._replace(hp=state.hp._replace(**{name: jnp.asarray(v, jnp.float32)}))


def _kl_beta(state, v):
    """The initial β of constraint=kl_penalty, kept in TrainState.extra (pgrun.train.offpolicy).
    β = 0 stays 0 (the adaptation only doubles or halves it): the same program, no penalty."""
    return state._replace(extra=state.extra._replace(kl_beta=jnp.asarray(v, jnp.float32)))


# How each sweepable key (pgrun.config.validate.SWEEP_RULES: the keys, their order and their valid
# values) is written into a TrainState. To make another hyperparameter sweepable (e.g.
# estimator.clip_eps), add a field to Hyperparams (pgrun/train/state.py, alphabetical order) that
# make_train fills and the iteration reads, its rule to SWEEP_RULES, and a line here:
# "estimator.clip_eps": _hp("clip_eps").
SETTERS: dict[str, Callable] = {
    "optimizer.lr": lambda st, v: st._replace(opt_state=set_learning_rate(st.opt_state, v)),
    "gamma": _hp("gamma"),
    "estimator.gae_lambda": _hp("gae_lambda"),
    "estimator.entropy_coef": _hp("entropy_coef"),
    "estimator.critic_lr": lambda st, v: st._replace(critic_opt_state=set_learning_rate(st.critic_opt_state, v)),
    "estimator.kl_beta": _kl_beta,
    # group estimators (pgrun.train.group.GroupState)
    "estimator.kl_coef": lambda st, v: st._replace(extra=st.extra._replace(kl_coef=jnp.asarray(v, jnp.float32))),
    "estimator.clip_eps_high": lambda st, v: st._replace(
        extra=st.extra._replace(clip_eps_high=jnp.asarray(v, jnp.float32))),
}


def apply_point(state: TrainState, values: dict[str, jax.Array]) -> TrainState:
    """Write one run's sweep values {key: scalar} into its TrainState (inside jit and vmap)."""
    for key, v in values.items():
        state = SETTERS[key](state, v)
    return state


def init_runs(trainer: Trainer, keys: jax.Array, values: dict[str, np.ndarray]) -> TrainState:
    """TrainState of every run [R, ...]: trainer.init(key_r) with run r's sweep values applied.

    Through `train.init_seeds` (a `lax.map`, not a vmap, which can deadlock on few cores; each
    run's initial parameters then come from its own key even under the rbg PRNG).
    """
    return init_seeds(lambda kv: apply_point(trainer.init(kv[0]), kv[1]), (keys, values))


class Layout(NamedTuple):
    """The run axis: points (grid of swept values) x seeds, point-major."""

    keys: tuple[str, ...]           # swept keys, in SWEEP_RULES order ((): no sweep)
    points: list[dict[str, float]]  # P points, each {key: value}
    seeds: list[int]                # S seeds, shared by all points

    @property
    def num_runs(self) -> int:
        return len(self.points) * len(self.seeds)

    @property
    def run_seeds(self) -> list[int]:
        return [s for _ in self.points for s in self.seeds]

    @property
    def run_points(self) -> list[int]:
        return [p for p in range(len(self.points)) for _ in self.seeds]

    def run_index(self, point: int, seed: int) -> int:
        return point * len(self.seeds) + self.seeds.index(seed)

    def values(self) -> dict[str, np.ndarray]:
        """Per-run values {key: [R] float32}, the input of `init_runs`."""
        return {k: np.array([self.points[p][k] for p in self.run_points], np.float32) for k in self.keys}

    def row_extras(self) -> list[dict] | None:
        """Per-run extra metrics.csv columns {point, key: value}; None without a sweep."""
        if not self.keys:
            return None
        return [{"point": p, **self.points[p]} for p in self.run_points]

    def columns(self, base: list[str]) -> list[str]:
        """metrics.csv columns: `point` and the swept keys follow `seed` (no change without a sweep)."""
        if not self.keys:
            return list(base)
        i = base.index("seed") + 1 if "seed" in base else len(base)
        return base[:i] + ["point", *self.keys] + base[i:]


def make_layout(cfg: Config) -> Layout:
    """The grid of sweep points (cartesian product, SWEEP_RULES key order) and the seeds."""
    swept = swept_values(cfg)
    keys = tuple(k for k in SWEEP_RULES if k in swept)
    points = [dict(zip(keys, map(float, combo))) for combo in itertools.product(*(swept[k] for k in keys))]
    seeds = [int(cfg.seed) + i for i in range(int(cfg.num_seeds))]
    return Layout(keys, points, seeds)
