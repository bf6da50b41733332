"""Vmapped hyperparameter sweeps: a grid of points x seeds flattened onto one run axis.

`pgrun sweep.optimizer.lr=[1e-3,1e-2] sweep.gamma=[0.99,0.999]` is a 2 x 2 grid. With S
seeds, run r = p·S + s trains seed `seed + s` at point p (every point sees the same seeds).
A point's values are written into each run's TrainState by `apply_point` (the hp dict, the
learning rate that `optax.inject_hyperparams` keeps in the optimizer state, or kl_penalty's
initial β in TrainState.extra), so they are traced arrays of the one compiled program, never
constants baked into it.
"""

from __future__ import annotations

import itertools
import math
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from pgrun.train import init_seeds

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
    return lambda state, v: state._replace(hp={**state.hp, name: jnp.asarray(v, jnp.float32)})


def _positive(v) -> bool:
    return math.isfinite(v) and v > 0


def _unit(v) -> bool:
    return 0.0 <= v <= 1.0


def _nonneg(v) -> bool:
    return math.isfinite(v) and v >= 0


def _kl_beta(state, v):
    """The initial β of constraint=kl_penalty, kept in TrainState.extra (pgrun.train_offpolicy).
    β = 0 stays 0 (the adaptation only doubles or halves it): the same program, no penalty."""
    return state._replace(extra=dict(state.extra, kl_beta=jnp.asarray(v, jnp.float32)))


# Sweepable (non-structural) keys: config key -> (write the value into a TrainState, valid?, rule).
# To make another hyperparameter sweepable (e.g. estimator.clip_eps), put it in TrainState.hp in
# make_train and add a line here: "estimator.clip_eps": (_hp("clip_eps"), _positive, "> 0").
SWEEPABLE: dict[str, tuple[Callable, Callable, str]] = {
    "optimizer.lr": (lambda st, v: st._replace(opt_state=set_learning_rate(st.opt_state, v)), _positive, "> 0"),
    "gamma": (_hp("gamma"), _unit, "in [0, 1]"),
    "estimator.gae_lambda": (_hp("gae_lambda"), _unit, "in [0, 1]"),
    "estimator.entropy_coef": (_hp("entropy_coef"), math.isfinite, "finite"),
    "estimator.critic_lr": (
        lambda st, v: st._replace(critic_opt_state=set_learning_rate(st.critic_opt_state, v)), _positive, "> 0"),
    "estimator.kl_beta": (_kl_beta, _nonneg, ">= 0"),
}


def apply_point(state, values: dict[str, jax.Array]):
    """Write one run's sweep values {key: scalar} into its TrainState (inside jit and vmap)."""
    for key, v in values.items():
        state = SWEEPABLE[key][0](state, v)
    return state


def init_runs(trainer, keys, values: dict[str, np.ndarray]):
    """TrainState of every run [R, ...]: trainer.init(key_r) with run r's sweep values applied.

    Through `train.init_seeds` (a `lax.map`, not a vmap, which can deadlock on few cores; each
    run's initial parameters then come from its own key even under the rbg PRNG).
    """
    return init_seeds(lambda kv: apply_point(trainer.init(kv[0]), kv[1]), (keys, values))


class Layout(NamedTuple):
    """The run axis: points (grid of swept values) x seeds, point-major."""

    keys: tuple[str, ...]           # swept keys, in SWEEPABLE order ((): no sweep)
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


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """{'optimizer': {'lr': [..]}, 'gamma': [..]} -> {'optimizer.lr': [..], 'gamma': [..]}."""
    if not isinstance(tree, dict):
        return {prefix: tree}
    out = {}
    for k, v in tree.items():
        out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    return out


def swept_values(cfg) -> dict[str, list]:
    """The sweep as {dotted key: list of values} (a scalar counts as a one-value list)."""
    from omegaconf import OmegaConf

    raw = OmegaConf.to_container(cfg.sweep, resolve=True) if cfg.get("sweep") else {}
    return {k: (list(v) if isinstance(v, (list, tuple)) else [v]) for k, v in flatten(raw).items()}


def make_layout(cfg) -> Layout:
    """The grid of sweep points (cartesian product, SWEEPABLE key order) and the seeds."""
    swept = swept_values(cfg)
    keys = tuple(k for k in SWEEPABLE if k in swept)
    points = [dict(zip(keys, map(float, combo))) for combo in itertools.product(*(swept[k] for k in keys))]
    seeds = [int(cfg.seed) + i for i in range(int(cfg.num_seeds))]
    return Layout(keys, points, seeds)


def validate_sweep(cfg) -> None:
    """ConfigError for a sweep key that is structural or unknown, or a value out of range."""
    from omegaconf import OmegaConf

    from pgrun.config import ConfigError
    from pgrun.estimators import needs_critic

    valid = ", ".join(SWEEPABLE)
    for key, vals in swept_values(cfg).items():
        if key not in SWEEPABLE:
            if OmegaConf.select(cfg, key, default="__missing__") == "__missing__":
                raise ConfigError(f"sweep.{key}: {key} is not a config key; keys that sweep.<key>=[...] can vmap: "
                                  f"{valid}.")
            raise ConfigError(
                f"sweep.{key}: {key} is structural (it changes the compiled program's shapes or code), so it "
                "cannot vary inside one vmapped program. Sweep it with a Hydra multirun instead, one job per "
                f"value, e.g. `pgrun -m {key}=A,B` (values comma-separated; lists in brackets). Keys that "
                f"sweep.<key>=[...] can vmap: {valid}.")
        if not vals:
            raise ConfigError(f"sweep.{key}=[] has no values; give a list such as sweep.{key}=[0.1,0.2].")
        _, ok, rule = SWEEPABLE[key]
        for v in vals:
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not ok(float(v)):
                raise ConfigError(f"sweep.{key} value {v!r} is not valid: every value must be a number {rule}.")
        if len(set(vals)) != len(vals):
            raise ConfigError(f"sweep.{key}={vals} repeats a value; give each value once.")
    swept = swept_values(cfg)
    est = cfg.estimator
    if "estimator.critic_lr" in swept and not needs_critic(est.weight, est.baseline):
        raise ConfigError(
            f"sweep.estimator.critic_lr: estimator={est.name} has no critic, so critic_lr has no effect; "
            "sweep it with an estimator that learns V (value_baseline, actor_critic).")
    if "estimator.gae_lambda" in swept and est.weight != "gae":
        raise ConfigError(
            f"sweep.estimator.gae_lambda: estimator={est.name} (weight={est.weight}) does not use λ; "
            "sweep it with estimator.weight=gae (e.g. estimator=actor_critic).")
    if "estimator.kl_beta" in swept and est.constraint != "kl_penalty":
        raise ConfigError(
            f"sweep.estimator.kl_beta: estimator={est.name} (constraint={est.constraint}) has no KL penalty, so "
            "kl_beta has no effect; sweep it with estimator.constraint=kl_penalty (e.g. estimator=kl_penalty).")
