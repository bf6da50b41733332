"""Group estimators against the exact ∇J of a tiny Tokens instance (tabular prefix policy).

`group_draws(overrides, K)` draws K gradient estimates at one random θ through the training
code's own `prepare` and `loss` (`pgrun.train.group.make_group_objective`), on the same K
batches for any estimator (the sampler does not depend on the estimator's settings), and
returns them with the exact ∇J by enumeration (`pgrun.core.sequences.exact_sequence_J`).
`fit_to_gradient` summarises the draws: the fitted scale ĉ of E[ĝ] ≈ ĉ ∇J, its standard error,
the misfit χ², the per-coordinate z against ∇J itself and the cosine of the mean with ∇J.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from pgrun.lab.token_instance import token_instance
from pgrun.train.group import make_group_objective
from pgrun.train.program import make_train

# copy, P = 1, V = 2, H = 2: 2 prompts × 9 strings, 6 states × 3 tokens; partial credit so lengths matter
TINY_TOKENS = ["env=Tokens", "env.task=copy", "env.prompt_len=1", "env.vocab=2", "env.horizon=2",
               "policy=tabular_prefix", "+env.params.token_reward=0.5", "gamma=1.0", "num_seeds=1",
               "episodes_per_iteration=8", "estimator.group_size=4"]


def group_draws(overrides: list[str], K: int, seed: int = 7, theta_seed: int = 42) -> dict[str, Any]:
    """{"draws" [K, D], "grad" [D] exact ∇J, "J", "returns" [K] batch mean returns} at a random θ ~ N(0, 1)."""
    inst = token_instance([*TINY_TOKENS, *overrides], theta_seed)
    cfg, parts, theta = inst.cfg, inst.parts, inst.theta
    trainer, objective = make_train(cfg, parts), make_group_objective(cfg, parts)
    J, grad_J = jax.value_and_grad(inst.J)(theta)
    state0 = trainer.init(jax.random.PRNGKey(0))._replace(params=theta)

    def one(key):
        state, batch = trainer.sample(state0._replace(key=key))
        data = objective.prepare(state, batch)
        g = jax.grad(lambda p: objective.loss(p, data, state.extra, jnp.float32(0.0))[0])(theta)
        return -ravel_pytree(g)[0], batch.reward.sum(axis=0).mean()

    g, ret = jax.jit(jax.vmap(one))(jax.random.split(jax.random.PRNGKey(seed), K))
    return {"draws": np.asarray(g, np.float64), "J": float(J), "returns": np.asarray(ret, np.float64),
            "grad": np.asarray(ravel_pytree(grad_J)[0], np.float64)}


def fit_to_gradient(draws: np.ndarray, grad: np.ndarray) -> dict[str, float]:
    """ĉ = Σ w m g / Σ w g² (w = 1/s², m, s the mean and standard error per coordinate), se(ĉ) =
    1/sqrt(Σ w g²), χ² = Σ ((m - ĉ g)/s)² with dof = (coordinates that vary) - 1, max |z| of m
    against ∇J, cos(m, ∇J), tr Cov(ĝ).  draws [K, D], grad [D]."""
    m, s = draws.mean(0), draws.std(0, ddof=1) / np.sqrt(len(draws))
    live = s > 0  # a coordinate every draw leaves at one value (e.g. 0 after a prefix that cannot score) is skipped
    dead_ok = bool(np.all(np.abs(m[~live] - grad[~live]) < 1e-6))  # ... and must equal ∇J there
    m, s, g = m[live], s[live], grad[live]
    w = 1.0 / s ** 2
    c = float(np.sum(w * m * g) / np.sum(w * g ** 2))
    return {"scale": c, "scale_se": float(1.0 / np.sqrt(np.sum(w * g ** 2))),
            "chi2": float(np.sum(((m - c * g) / s) ** 2)), "dof": int(live.sum() - 1),
            "max_abs_z": float(np.max(np.abs(m - g) / s)) if dead_ok else float("inf"),
            "cosine": float(draws.mean(0) @ grad / (np.linalg.norm(draws.mean(0)) * np.linalg.norm(grad))),
            "total_variance": float(draws.var(0, ddof=1).sum())}
