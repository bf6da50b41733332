"""The iteration of the group estimators (RLOO, GRPO, Dr. GRPO, DAPO, GSPO, REINFORCE++):
`make_train` swaps in these `init`, `sample` and `update` when `uses_group(est)`.

  sample  `rollout_episodes` with group_size G: episodes gG .. gG + G - 1 share their reset
          key, so each group is G completions of one prompt (one start state).
  update  1. Once, on the whole batch: log π_ref(a_t|s_t) of the frozen initial policy (when
             β > 0); with kl_estimator=k1_reward the rewards become r_t - β (log π_old - log π_ref);
             Ψ_t (estimator.weight: total_return or reward_to_go, γ) and the episode returns R_i;
             A_t = (Ψ_t - b_i) / s_i  (`pgrun.core.group`: group_mean / group_loo / the
             batch's leave-one-out mean; group_std / batch_std); k_i (dynamic sampling).
          2. E epochs; each shuffles the groups into M minibatches of whole groups and takes
             one optimizer step per minibatch on
               loss(θ') = agg_{i,t}[ -f(ρ_{i,t}, A_{i,t}) + β k3_{i,t} ] - c_H H̄(π_θ'),
             f = ρA without correction (ρ ≡ 1 in value, its gradient the score), or the
             clipped min(ρA, clip(ρ, 1-ε, 1+ε_high)A) with correction=clip; ρ at token or
             sequence level; agg the estimator's loss aggregation.
With E = M = 1 and no correction this is the lecture's on-policy estimator with the group
baseline, scaling and aggregation applied (its first step is the unbiased RLOO gradient
for baseline=group_loo, adv_scale=none, loss_agg=seq_sum, β = 0).
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, cast

import jax
import jax.numpy as jnp
import numpy as np
import optax

from pgrun.config.group import uses_group
from pgrun.config.schema import Config
from pgrun.core.batch import Batch
from pgrun.core.estimators import compute_advantages, leave_one_out_mean
from pgrun.core.group import (
    aggregate,
    clipped_objective,
    group_baseline,
    informative_groups,
    kl_k1,
    kl_k3,
    log_ratios,
    scale_advantages,
)
from pgrun.core.returns import total_return
from pgrun.rollout.episodes import rollout_episodes
from pgrun.train.build import Components
from pgrun.train.state import TrainState

__all__ = ["GroupState", "make_group", "sequence_metrics", "uses_group"]
NAN: jax.Array = np.float32(np.nan)  # type: ignore[assignment]  # JAX takes it as an array; no JAX op at import


class GroupState(NamedTuple):
    """TrainState.extra of a group estimator (fields in alphabetical order, like ReuseState)."""

    clip_eps_high: jax.Array  # ε_high (= ε_low = clip_eps unless set)
    kl_coef: jax.Array        # β
    ref_params: Any           # π_ref: the initial policy's parameters (() when β = 0)


def sequence_metrics(env: Any, batch: Batch) -> dict[str, jax.Array]:
    """exact_match (rate), length_correct, length_incorrect (mean completion length of each; NaN when
    there are none) for an env with `exact_match(final_obs)` (env=Tokens); {} for others.

    An episode counts as correct only if it terminated (a time-limit cut is never an answer).
    """
    if not hasattr(env, "exact_match"):
        return {}
    T, B = batch.valid.shape
    length = jnp.sum(batch.valid, axis=0)                                   # [B]
    final_obs = batch.next_obs[jnp.clip(length - 1, 0, T - 1), jnp.arange(B)]
    ok = env.exact_match(final_obs) & jnp.any(batch.terminated, axis=0)
    n_ok = jnp.sum(ok)
    lf = length.astype(jnp.float32)
    mean_of = lambda m, n: jnp.where(n > 0, jnp.sum(lf * m) / jnp.maximum(n, 1), NAN)  # noqa: E731
    return {"exact_match": jnp.mean(ok.astype(jnp.float32)), "length_correct": mean_of(ok, n_ok),
            "length_incorrect": mean_of(~ok, B - n_ok)}


class Data(NamedTuple):
    obs: jax.Array       # [T, B, L]
    action: jax.Array    # [T, B]
    logp_old: jax.Array  # [T, B] log π_old(a_t|s_t) at sampling
    logp_ref: jax.Array  # [T, B] log π_ref(a_t|s_t) (0 when β = 0)
    adv: jax.Array       # [T, B]
    valid: jax.Array     # [T, B] bool
    keep: jax.Array      # [T, B] bool: k_i broadcast over t (dynamic sampling)


def uses_reference(cfg: Config) -> bool:
    """Whether the run keeps π_ref (β > 0, or β swept)."""
    return cfg.estimator.kl_coef > 0 or "kl_coef" in (cfg.sweep.get("estimator") or {})


class GroupObjective(NamedTuple):
    prepare: Callable  # (TrainState, Batch) -> Data: advantages etc. of step 1 (module docstring)
    loss: Callable     # (params, Data, GroupState, entropy_coef) -> (loss, {"entropy", "clip_frac"})


def make_group_objective(cfg: Config, parts: Components) -> GroupObjective:
    """The batch preparation and the minibatch loss of the group iteration for the loaded `cfg`;
    `-jax.grad(loss)(params, prepare(state, batch), ...)` is the estimator's gradient of J."""
    est = cfg.estimator
    policy, max_steps = parts.policy, parts.max_steps
    G = int(est.group_size)
    use_ref = uses_reference(cfg)
    clip = est.correction == "clip"
    const = float(est.loss_const if est.loss_const is not None else max_steps)

    def prepare(state: TrainState, batch: Batch) -> Data:
        ex, hp = cast(GroupState, state.extra), state.hp
        valid = batch.valid
        v = valid.astype(jnp.float32)
        if use_ref:
            logp_ref = jax.lax.stop_gradient(policy.dist(ex.ref_params, batch.obs).log_prob(batch.action)) * v
        else:
            logp_ref = jnp.zeros_like(batch.log_prob)
        reward = batch.reward
        if use_ref and est.kl_estimator == "k1_reward":
            reward = reward - ex.kl_coef * kl_k1(batch.log_prob, logp_ref) * v
        shaped = batch._replace(reward=reward)
        psi = compute_advantages(shaped, est.weight, "none", hp.gamma, hp.gae_lambda).adv    # [T, B]
        R = jax.vmap(total_return, in_axes=(1, 1, None))(reward, valid, hp.gamma)           # [B]
        if est.baseline == "batch_mean":
            b = leave_one_out_mean(R)
        else:
            b = group_baseline(R, G, est.baseline)
        adv = scale_advantages((psi - b[None, :]) * v, R, valid, G, est.adv_scale)
        env_return = jnp.sum(batch.reward, axis=0)
        keep = informative_groups(env_return, G) if est.dynamic_sampling else jnp.ones_like(env_return, bool)
        return Data(batch.obs, batch.action, batch.log_prob, logp_ref, adv, valid,
                    jnp.broadcast_to(keep[None, :], valid.shape))

    def loss_fn(params: Any, d: Data, ex: GroupState, entropy_coef: jax.Array) -> tuple[jax.Array, dict]:
        dist = policy.dist(params, d.obs)
        logp = dist.log_prob(d.action)
        if clip:
            ratio = jnp.exp(log_ratios(logp, d.logp_old, d.valid, est.ratio_level))
            obj = clipped_objective(ratio, d.adv, est.clip_eps, ex.clip_eps_high)
        else:  # ρ = 1 in value; its gradient the score (or its per-sequence mean)
            ratio = jnp.exp(log_ratios(logp, jax.lax.stop_gradient(logp), d.valid, est.ratio_level))
            obj = ratio * d.adv
        per_token = -obj
        if use_ref and est.kl_estimator == "k3_loss":
            per_token = per_token + ex.kl_coef * kl_k3(logp, d.logp_ref)
        keep = d.keep[0]
        loss = aggregate(per_token, d.valid, est.loss_agg, const, keep)
        v = d.valid.astype(jnp.float32)
        entropy = jnp.sum(dist.entropy() * v) / jnp.maximum(v.sum(), 1.0)
        clipped = (jnp.abs(ratio - 1.0) > jnp.where(ratio < 1.0, est.clip_eps, ex.clip_eps_high)) & d.valid
        clip_frac = jnp.sum(clipped) / jnp.maximum(v.sum(), 1.0)
        return loss - entropy_coef * entropy, {"entropy": entropy, "clip_frac": clip_frac}

    return GroupObjective(prepare, loss_fn)


def make_group(cfg: Config, parts: Components, base_init: Callable, tx: optax.GradientTransformation
               ) -> tuple[Callable, Callable, Callable]:
    """(init, sample, update) of the group iteration (module docstring) for the loaded `cfg`."""
    est = cfg.estimator
    env, env_params, policy, max_steps = parts.env, parts.env_params, parts.policy, parts.max_steps
    G, n_eps = int(est.group_size), int(cfg.episodes_per_iteration)
    n_groups, M, E = n_eps // G, int(est.minibatches), int(est.epochs)
    use_ref = uses_reference(cfg)
    objective = make_group_objective(cfg, parts)
    clip = est.correction == "clip"
    eps_high0 = est.clip_eps if est.clip_eps_high is None else est.clip_eps_high

    def init(key: jax.Array) -> TrainState:
        state = base_init(key)
        return state._replace(extra=GroupState(jnp.float32(eps_high0), jnp.float32(est.kl_coef),
                                               state.params if use_ref else ()))

    def sample(state: TrainState) -> tuple[TrainState, Batch]:
        key, k_roll = jax.random.split(state.key)
        batch = rollout_episodes(env, env_params, policy, state.params, k_roll, n_eps, max_steps, group_size=G)
        return state._replace(key=key), batch

    def update(state: TrainState, batch: Batch) -> tuple[TrainState, dict[str, jax.Array]]:
        ex, hp = cast(GroupState, state.extra), state.hp
        data = objective.prepare(state, batch)
        valid, v = batch.valid, batch.valid.astype(jnp.float32)
        env_return = jnp.sum(batch.reward, axis=0)
        key, k_perm = jax.random.split(state.key)
        if M == 1:
            cols = jnp.broadcast_to(jnp.arange(n_eps), (E, 1, n_eps))
        else:
            perms = jax.vmap(lambda k: jax.random.permutation(k, n_groups))(jax.random.split(k_perm, E))
            cols = (perms[:, :, None] * G + jnp.arange(G)).reshape(E, M, n_eps // M)

        def mb_step(carry: tuple, idx: jax.Array) -> tuple:
            params, opt_state = carry
            d = jax.tree_util.tree_map(lambda x: x[:, idx], data)
            (loss, aux), grads = jax.value_and_grad(objective.loss, has_aux=True)(params, d, ex, hp.entropy_coef)
            updates, opt_state = tx.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), (loss, aux, optax.tree.norm(grads))

        scanned: tuple[tuple[Any, Any], tuple[jax.Array, dict[str, jax.Array], jax.Array]] = jax.lax.scan(
            mb_step, (state.params, state.opt_state), cols.reshape(E * M, -1))
        (params, opt_state), (losses, auxs, norms) = scanned

        ep_length = jnp.sum(v, axis=0)
        steps = jnp.sum(valid).astype(jnp.int32)
        finite = jnp.all(jnp.isfinite(losses)) & jnp.all(jnp.isfinite(norms)) & jnp.all(jnp.stack(
            [jnp.all(jnp.isfinite(x)) for x in jax.tree_util.tree_leaves(params)]))
        new = state._replace(params=params, opt_state=opt_state, key=key, iteration=state.iteration + 1,
                             env_steps=state.env_steps + steps)
        metrics = {
            "iteration": new.iteration, "env_steps": new.env_steps, "episodes": jnp.int32(n_eps),
            "return_mean": env_return.mean(), "return_std": env_return.std(),
            "return_min": env_return.min(), "return_max": env_return.max(),
            "length_mean": ep_length.mean(), "loss": losses[0], "grad_norm": norms[0],
            "entropy": auxs["entropy"][0], "value_loss": NAN, "finite": finite,
            "clip_frac": auxs["clip_frac"].mean() if clip else NAN,
            "kl_beta": ex.kl_coef, "updates": jnp.int32(E * M), **sequence_metrics(env, batch),
        }
        return new, metrics

    return init, sample, update
