"""Per-batch policy-gradient estimates at a fixed θ, for the gradient diagnostics.

Every function returns ASCENT directions, estimates of +∇_θ J(θ), flattened with
`jax.flatten_util.ravel_pytree` to [P] (the order of `ravel_pytree(params)`).
For the surrogate estimators of `pgrun.core.estimators` this is -∇ pg_loss with no entropy
bonus and no advantage normalisation (both change the estimator's expectation):

    ĝ = (1/N) Σ_i Σ_t ∇ log π_θ(a_t^i|s_t^i) (Ψ_t^i - b_t^i)

with (Ψ, b) from ESTIMATORS; the optimal baselines are `pgrun.core.optimal_baseline`:
`optimal_baseline` and `reinforce_optimal_baseline` (RUNNING) are the training estimator
`estimator=optimal_baseline` with reward-to-go / total-return weights, whose b* comes from
decayed running sums over the previous batches, so they are evaluated by `running_grads`
over a sequence of batches (warm-up batches first), not batch by batch.
gamma_t=True multiplies step t's term by γ^t (`pgrun.core.estimators.discount_from_start`) for
the estimators whose weight is reward_to_go or gae (optimal_baseline included), which makes them
unbiased for the discounted J; the total-return estimators (reinforce, reinforce_baseline,
reinforce_optimal_baseline) are unbiased without it and ignore it.
Critic-based estimators take the critic as a plain function V(obs [..., obs_dim]) -> [...],
either given (e.g. the exact V^π of a tabular env) or fitted by `fit_critic` on batches
independent of the ones being diagnosed (so a value baseline stays unbiased).
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree

from pgrun.core.batch import Batch
from pgrun.core.estimators import compute_advantages, discount_from_start, pg_loss, value_loss
from pgrun.core.optimal_baseline import (
    episode_returns,
    episode_scores,
    init_baseline_stats,
    optimal_baseline,
    optimal_baseline_grad_flat,
    running_optimal_baseline_grad,
)
from pgrun.core.policies import make_critic
from pgrun.rollout.episodes import rollout_episodes

# name -> (weight Ψ, baseline b) of pgrun.core.estimators.compute_advantages
ESTIMATORS: dict[str, tuple[str, str]] = {
    "reinforce": ("total_return", "none"),
    "reinforce_baseline": ("total_return", "batch_mean"),
    "reward_to_go": ("reward_to_go", "none"),
    "baseline": ("reward_to_go", "batch_mean"),
    "batch_mean_time": ("reward_to_go", "batch_mean_time"),
    "value_baseline": ("reward_to_go", "value"),
    "actor_critic": ("gae", "value"),
}
# the training estimator estimator=optimal_baseline (b* from running sums): name -> weight Ψ
RUNNING: dict[str, str] = {"optimal_baseline": "reward_to_go", "reinforce_optimal_baseline": "total_return"}
SPECIAL = ("optimal_baseline_loo", "optimal_baseline_indep")
ALL_ESTIMATORS = tuple(ESTIMATORS) + tuple(RUNNING) + SPECIAL


def needs_critic(name: str) -> bool:
    return name in ESTIMATORS and "value" in ESTIMATORS[name]


def make_grad_fn(name: str, policy, gamma: float, gae_lambda: float = 0.95,
                 critic: Callable | None = None, b_star=None, gamma_t: bool = False) -> Callable:
    """(params, batch [T, N, ...]) -> flat ascent gradient [P] for estimator `name`.

    optimal_baseline_loo:    (1/N) Σ_i g_i (R_i - b*_{-i}), b* leave-one-out within the batch (what
                             estimator=optimal_baseline was before it kept running sums);
    optimal_baseline_indep:  (1/N) Σ_i g_i (R_i - b*), b* [P] given, estimated on other batches.
    The RUNNING estimators carry state from batch to batch: use `running_grads`.
    """
    if name in RUNNING:
        raise ValueError(f"{name} carries its b* sums from batch to batch; evaluate it with running_grads")
    if name == "optimal_baseline_loo":
        def grad_opt(params, batch: Batch):
            return optimal_baseline_grad_flat(episode_scores(policy, params, batch),
                                              episode_returns(batch, gamma))
        return grad_opt
    if name == "optimal_baseline_indep":
        if b_star is None:
            raise ValueError("optimal_baseline_indep needs b_star [P] from independent batches")
        b = jnp.asarray(b_star, jnp.float32)

        def grad_opt_indep(params, batch: Batch):
            g, R = episode_scores(policy, params, batch), episode_returns(batch, gamma)
            return jnp.mean(g * (R[:, None] - b[None, :]), axis=0)
        return grad_opt_indep
    if name not in ESTIMATORS:
        raise KeyError(f"unknown estimator {name!r}; valid: {', '.join(ALL_ESTIMATORS)}")
    weight, baseline = ESTIMATORS[name]
    if needs_critic(name) and critic is None:
        raise ValueError(f"estimator {name} needs a critic V(obs)")

    def grad_fn(params, batch: Batch):
        v_t = critic(batch.obs) if critic is not None else None
        v_tp1 = critic(batch.next_obs) if critic is not None else None
        adv = compute_advantages(batch, weight, baseline, gamma, gae_lambda, v_t, v_tp1).adv
        if gamma_t:
            adv = discount_from_start(adv, batch, weight, gamma)
        g = jax.grad(lambda p: pg_loss(p, policy, batch, adv, 0.0)[0])(params)
        return -ravel_pytree(g)[0]

    return grad_fn


def sample_batches(env, env_params, policy, params, keys, num_episodes: int, max_steps: int,
                   chunk: int = 256) -> Batch:
    """M independent batches, one per key: fields [M, T, N, ...].

    Sampled `chunk` keys at a time by one compiled program (keys padded to a multiple of
    the chunk), so any M costs a single compilation.
    """
    keys = jnp.asarray(keys)
    M = keys.shape[0]
    C = min(M, chunk)
    roll = lambda p, k: rollout_episodes(env, env_params, policy, p, k, num_episodes, max_steps)  # noqa: E731
    f = jax.jit(jax.vmap(roll, in_axes=(None, 0)))
    pad = (-M) % C
    if pad:
        keys = jnp.concatenate([keys, keys[:pad]], axis=0)
    parts = [f(params, keys[i:i + C]) for i in range(0, M + pad, C)]
    out = parts[0] if len(parts) == 1 else jax.tree_util.tree_map(lambda *x: jnp.concatenate(x), *parts)
    return jax.tree_util.tree_map(lambda x: x[:M], out) if pad else out


def batched_grads(grad_fn: Callable, params, batches: Batch, chunk: int = 64) -> np.ndarray:
    """grad_fn on each of the M batches -> [M, P] float64 (lax.map in chunks bounds memory)."""
    f = jax.jit(lambda b: jax.lax.map(lambda x: grad_fn(params, x), b, batch_size=chunk))
    return np.asarray(f(batches), np.float64)


def running_grads(name: str, policy, params, warmup: Batch, batches: Batch, gamma: float,
                  decay: float, gamma_t: bool = False) -> np.ndarray:
    """The training estimator `name` in RUNNING on each of M batches, in order -> [M, P] float64.

    Its sums (`pgrun.core.optimal_baseline.BaselineStats`) start at 0, are updated by the K
    `warmup` batches [K, T, N, ...] (their gradients are dropped), then carried through the
    M `batches` [M, T, N, ...]: batch m's b* comes from the warm-up batches, batches < m and
    its own other episodes, as in training after K + m updates at a θ that does not move.
    Given the batches before it, each row is an unbiased estimate, so the rows are
    uncorrelated (martingale differences) though not independent. gamma_t: Ψ_t × γ^t for the
    reward-to-go form, as in training (`discount_from_start`; total return ignores it).
    """
    weight = RUNNING[name]
    P = ravel_pytree(params)[0].size

    def step(stats, batch):
        psi = compute_advantages(batch, weight, "none", gamma, 0.0).adv  # Ψ_t, 0 on padding
        if gamma_t:
            psi = discount_from_start(psi, batch, weight, gamma)
        grad, stats = running_optimal_baseline_grad(policy, params, batch, psi, gamma, stats, decay)
        return stats, ravel_pytree(grad)[0]

    @jax.jit
    def run(warm, data):
        stats, _ = jax.lax.scan(step, init_baseline_stats(P), warm)
        return jax.lax.scan(step, stats, data)[1]

    return np.asarray(run(warmup, batches), np.float64)


def fit_optimal_baseline(policy, params, batches: Batch, gamma: float) -> jax.Array:
    """b*_k = Σ_j g_jk² R_j / Σ_j g_jk² over all episodes of independent batches [M, T, N, ...]."""
    flat = merge_batches(batches)
    g = jax.jit(episode_scores, static_argnums=0)(policy, params, flat)
    return optimal_baseline(g, episode_returns(flat, gamma))


def merge_batches(batches: Batch) -> Batch:
    """[M, T, N, ...] -> one time-major batch [T, M·N, ...] (episodes side by side)."""
    def merge(x):
        x = jnp.swapaxes(x, 0, 1)
        return x.reshape((x.shape[0], x.shape[1] * x.shape[2]) + x.shape[3:])
    return jax.tree_util.tree_map(merge, batches)


def fit_critic(obs_dim: int, hidden, activation: str, batches: Batch, gamma: float, key,
               steps: int = 300, lr: float = 3e-3) -> Callable:
    """Fit V_φ by full-batch Adam regression on Monte-Carlo reward-to-go targets G_t.

    batches [M, T, N, ...] (independent of any batch the critic will be used on);
    loss ½ mean_valid (V_φ(s_t) - G_t)². Returns V(obs [..., obs_dim]) -> [...].
    """
    init, apply = make_critic(obs_dim, hidden, activation)
    flat = merge_batches(batches)  # one time-major batch [T, M·N, ...]
    target = compute_advantages(flat, "reward_to_go", "none", gamma, 0.0).critic_target
    obs, valid = flat.obs, flat.valid.astype(jnp.float32)
    tx = optax.adam(lr)

    @jax.jit
    def train(phi):
        def step(carry, _):
            phi, opt = carry
            loss, g = jax.value_and_grad(value_loss)(phi, apply, obs, target, valid)
            u, opt = tx.update(g, opt, phi)
            return (optax.apply_updates(phi, u), opt), loss
        (phi, _), losses = jax.lax.scan(step, (phi, tx.init(phi)), None, length=steps)
        return phi, losses

    phi, _ = train(init(key))
    return lambda o: apply(phi, o)
