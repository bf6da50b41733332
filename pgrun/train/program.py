"""The training program: `make_train` builds pure `init(key)` and `chunk(state)`.

One iteration = sample `episodes_per_iteration` episodes with π_θ -> advantages -> one
optax step on the surrogate (and `critic_updates` steps on V_φ where a critic exists).
A chunk is a `lax.scan` of `log_every` iterations; the host vmaps and jits it over seeds.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, cast

import jax
import jax.numpy as jnp
import optax
from jax.flatten_util import ravel_pytree

from pgrun.config.schema import Config, OptimizerConfig
from pgrun.core.batch import Batch
from pgrun.core.estimators import (
    compute_advantages,
    discount_from_start,
    next_state_values,
    normalize,
    pg_loss,
    pg_value_and_grad,
    value_loss,
)
from pgrun.core.optimal_baseline import BaselineStats, init_baseline_stats, running_optimal_baseline_grad
from pgrun.core.policies import Policy
from pgrun.rollout.episodes import rollout_episodes
from pgrun.train.build import Components, build
from pgrun.train.group import make_group, sequence_metrics, uses_group
from pgrun.train.offpolicy import make_offpolicy, uses_offpolicy
from pgrun.train.state import Hyperparams, TrainState


class Trainer(NamedTuple):
    init: Callable    # key -> TrainState
    chunk: Callable   # TrainState -> (TrainState, metrics {name: [log_every]})
    sample: Callable  # TrainState -> (TrainState, Batch): rollout with π_θ (advances the key)
    update: Callable  # (TrainState, Batch) -> (TrainState, metrics): one iteration's learning
    parts: Components  # the env, policy and critic the functions close over

    @property
    def env(self) -> Any:
        return self.parts.env

    @property
    def env_params(self) -> Any:
        return self.parts.env_params

    @property
    def policy(self) -> Policy:
        return self.parts.policy

    @property
    def max_steps(self) -> int:
        return self.parts.max_steps


def make_optimizer(cfg_opt: OptimizerConfig, lr: float, total_steps: int) -> optax.GradientTransformation:
    """optax optimizer with the learning rate injected (so it is state, and vmappable).

    schedule=linear scales every update by 1 - k/total_steps (k = updates so far), and
    schedule=cosine by ½(1 + cos(π k/total_steps)): the step size decays to 0 at the end.
    """
    base = {"adam": optax.adam, "sgd": optax.sgd}[cfg_opt.name]
    parts = [optax.inject_hyperparams(base)(learning_rate=lr)]
    if cfg_opt.max_grad_norm is not None:
        parts.insert(0, optax.clip_by_global_norm(cfg_opt.max_grad_norm))
    if cfg_opt.schedule == "linear":
        parts.append(optax.scale_by_schedule(lambda k: 1.0 - k / total_steps))
    elif cfg_opt.schedule == "cosine":
        parts.append(optax.scale_by_schedule(optax.cosine_decay_schedule(1.0, total_steps)))
    return optax.chain(*parts) if len(parts) > 1 else parts[0]


def init_seeds(init: Callable, keys: Any) -> Any:
    """[init(k) for k in keys], stacked on a leading axis: a jitted `lax.map`, never a vmap.

    keys: [R] keys, or any pytree of arrays with a leading axis R (one item per run).
    Vmapped, the orthogonal initializers' batched LAPACK QR (jaxlib's ParallelBatchMap) can
    deadlock XLA's intra-op thread pool on a 2-core machine: every worker waits on sub-tasks
    that no free worker picks up (seen with 256 seeds, with forced host devices, and with
    PPO's actor and critic at 16 seeds in 2 runs of 4).
    """
    return jax.jit(lambda k: jax.lax.map(init, k))(keys)


def tree_all_finite(tree: Any) -> jax.Array:
    leaves = jax.tree_util.tree_leaves(tree)
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves])) if leaves else jnp.bool_(True)


def make_train(cfg: Config, parts: Components | None = None) -> Trainer:
    """Build the pure per-seed functions for the run described by `cfg` (a loaded Config),
    from `parts` when the caller has built them already (`pgrun.train.build`)."""
    parts = build(cfg) if parts is None else parts
    env, env_params, policy, max_steps = parts.env, parts.env_params, parts.policy, parts.max_steps
    use_critic, critic_init, critic_apply = parts.use_critic, parts.critic_init, parts.critic_apply
    est = cfg.estimator
    tx = make_optimizer(cfg.optimizer, cfg.optimizer.lr, int(cfg.iterations))
    critic_tx = optax.inject_hyperparams(optax.adam)(learning_rate=est.critic_lr)  # lr in state: sweepable
    n_eps = int(cfg.episodes_per_iteration)
    total_iterations = int(cfg.iterations)

    def init(key: jax.Array) -> TrainState:
        k_pi, k_v, k_run = jax.random.split(key, 3)
        params = policy.init(k_pi)
        critic_params = critic_init(k_v) if use_critic else {}
        hp = Hyperparams(entropy_coef=jnp.float32(est.entropy_coef), gae_lambda=jnp.float32(est.gae_lambda),
                         gamma=jnp.float32(cfg.gamma))
        baseline = init_baseline_stats(ravel_pytree(params)[0].size) if est.baseline == "optimal" else ()
        return TrainState(params, tx.init(params), critic_params,
                          critic_tx.init(critic_params) if use_critic else {}, hp, k_run,
                          jnp.int32(0), jnp.int32(0), baseline=baseline)

    def sample(state: TrainState) -> tuple[TrainState, Batch]:
        key, k_roll = jax.random.split(state.key)
        batch = rollout_episodes(env, env_params, policy, state.params, k_roll, n_eps, max_steps)
        return state._replace(key=key), batch

    def update(state: TrainState, batch: Batch) -> tuple[TrainState, dict[str, jax.Array]]:
        hp = state.hp
        valid = batch.valid.astype(jnp.float32)
        if use_critic:
            v_t = critic_apply(state.critic_params, batch.obs)
            v_tp1 = next_state_values(lambda o: critic_apply(state.critic_params, o), batch, v_t, max_steps)
        else:
            v_t = v_tp1 = None
        advs = compute_advantages(batch, est.weight, est.baseline, hp.gamma, hp.gae_lambda, v_t, v_tp1)
        adv = normalize(advs.adv, valid) if est.normalize_advantages else advs.adv
        if est.gamma_t:  # step t's term × γ^t: unbiased for the discounted J (core.estimators)
            adv = discount_from_start(adv, batch, est.weight, hp.gamma)
        baseline = state.baseline
        if est.baseline == "optimal":  # (1/N) Σ_i (u_i - b ⊙ g_i), b* from running sums, plus the entropy term
            loss, aux = pg_loss(state.params, policy, batch, adv, hp.entropy_coef)  # logged surrogate
            psi = discount_from_start(advs.adv, batch, est.weight, hp.gamma) if est.gamma_t else advs.adv
            ascent, baseline = running_optimal_baseline_grad(policy, state.params, batch, psi, hp.gamma,
                                                             cast(BaselineStats, state.baseline),
                                                             est.baseline_decay)
            entropy_grads = jax.grad(lambda p: pg_loss(p, policy, batch, jnp.zeros_like(adv), hp.entropy_coef)[0])(
                state.params)
            grads = jax.tree_util.tree_map(lambda e, a: e - a, entropy_grads, ascent)
        else:
            (loss, aux), grads = pg_value_and_grad(state.params, policy, batch, adv, hp.entropy_coef)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)

        critic_params, critic_opt_state = state.critic_params, state.critic_opt_state
        v_loss = jnp.float32(jnp.nan)
        if use_critic:
            def critic_step(carry, _):
                phi, opt = carry
                l, g = jax.value_and_grad(value_loss)(phi, critic_apply, batch.obs, advs.critic_target, valid)
                u, opt = critic_tx.update(g, opt, phi)
                return (optax.apply_updates(phi, u), opt), l
            (critic_params, critic_opt_state), losses = jax.lax.scan(
                critic_step, (critic_params, critic_opt_state), None, length=est.critic_updates)
            v_loss = losses[0]

        ep_return = jnp.sum(batch.reward, axis=0)          # [B] undiscounted
        ep_length = jnp.sum(valid, axis=0)                 # [B]
        steps = jnp.sum(batch.valid).astype(jnp.int32)
        grad_norm = optax.tree.norm(grads)
        finite = jnp.isfinite(loss) & jnp.isfinite(grad_norm) & tree_all_finite(params)
        if use_critic:
            finite = finite & tree_all_finite(critic_params)
        new = TrainState(params, opt_state, critic_params, critic_opt_state, hp, state.key,
                         state.iteration + 1, state.env_steps + steps, baseline=baseline)
        metrics = {
            "iteration": new.iteration, "env_steps": new.env_steps,
            "episodes": jnp.int32(n_eps),
            "return_mean": ep_return.mean(), "return_std": ep_return.std(),
            "return_min": ep_return.min(), "return_max": ep_return.max(),
            "length_mean": ep_length.mean(), "loss": loss, "grad_norm": grad_norm,
            "entropy": aux["entropy"], "value_loss": v_loss, "finite": finite, **sequence_metrics(env, batch),
        }
        return new, metrics

    if uses_group(est):  # group baselines, scaling, aggregation, ratios, KL to π_ref (docs/llm.md)
        tx_group = make_optimizer(cfg.optimizer, cfg.optimizer.lr, total_iterations * est.epochs * est.minibatches)
        init, sample, update = make_group(cfg, parts, init, tx_group)
    elif uses_offpolicy(est):  # epochs x minibatches, corrections, constraints, steps mode
        tx_reuse = make_optimizer(cfg.optimizer, cfg.optimizer.lr, total_iterations * est.epochs * est.minibatches)
        init, sample, update = make_offpolicy(cfg, parts, init, tx_reuse, critic_tx)

    def chunk_step(state: TrainState, _: None) -> tuple[TrainState, dict[str, jax.Array]]:
        new, metrics = update(*sample(state))
        active = state.iteration < total_iterations  # the last chunk may run past the end
        new = jax.tree_util.tree_map(lambda a, b: jnp.where(active, a, b), new, state)
        metrics["active"] = active
        return new, metrics

    def chunk(state: TrainState) -> tuple[TrainState, dict[str, jax.Array]]:
        return jax.lax.scan(chunk_step, state, None, length=min(int(cfg.log_every), total_iterations))

    return Trainer(init, chunk, sample, update, parts)
