"""Iterations that reuse their batch (notes 04), and fixed-horizon sampling.

`train.make_train` swaps in these `init`, `sample` and `update` when `uses_offpolicy(est)`
(several optimizer steps per batch, a correction or constraint, a jointly trained critic,
or `rollout=steps`); the on-policy estimators keep program.py's own path unchanged.

One iteration = sample -> update:

  sample  episodes mode: `rollout_episodes`, as the on-policy path.
          steps mode: `rollout_steps`, num_envs × num_steps with auto-reset; the envs and
          the figures of the last episodes that ended live in TrainState.extra.
  update  1. Once, on the whole batch, with π_θ (the sampling policy) and V_φ as they are:
             A_t (`compute_advantages`, optionally normalised, then × γ^t with gamma_t), the
             critic's targets, and π_θ(·|s_t) for KL terms.
          2. trust_region: one `pgrun.core.trpo.trpo_step` on the whole batch.
             otherwise: E epochs; each shuffles the batch into M minibatches
             (`pgrun.core.minibatches`: whole columns, or transitions in steps mode) and takes one
             optimizer step per minibatch on
               loss(θ'[, φ]) = -J̃(θ') - c_H·H(π_θ') [+ β·KL̄(π_θ ‖ π_θ')] [+ c_V·V-loss(φ)],
             J̃ the correction's surrogate (`pgrun.core.offpolicy`, `pgrun.core.ppo`). With target_kl,
             the first minibatch whose estimated KL(π_θ ‖ π_θ') exceeds it, and every one
             after it, takes no step (parameters and optimizer state are kept: `jnp.where`).
          3. V_φ: with value_coef, trained inside step 2 by the *same* optimizer, one optax
             transform over the pair (θ, φ), so global-norm clipping sees both gradients;
             otherwise its own optimizer takes `critic_updates` full-batch steps afterwards.
          4. Diagnostics on the whole batch at the final θ': importance weights, KL(π_θ ‖ π_θ');
             kl_penalty adapts β for the next iteration.
          5. Overflow: `log_weight_max` is the largest log w (after clip_weight) any applied step
             used. Above log(float32 max) ≈ 88.72 that weight was inf and the iteration counts as
             non-finite; `weight_overflow` marks a non-finite iteration whose weights passed
             e^44.36 (their squares, and so gradient norms, overflow), and the runner then stops with
             pgrun.errors.ImportanceWeightOverflow instead of the generic NaN message.

Normalisation: corrections none / trajectory / per_decision without a constraint keep the
notes' (1/N) Σ_i Σ_t (N = episodes, or env columns in steps mode, per minibatch N/M), so
their first step equals the on-policy estimator's; clip, kl_penalty and trust_region use a
mean over valid steps, as their papers do.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from pgrun.config.schema import Config, EstimatorConfig
from pgrun.core.batch import broadcast_dist
from pgrun.core.estimators import (
    compute_advantages,
    discount_from_start,
    next_state_values,
    normalize,
    value_loss,
)
from pgrun.core.masked import masked_mean
from pgrun.core.minibatches import split_columns, split_transitions
from pgrun.core.offpolicy import (
    LOG_FLOAT32_MAX,
    is_surrogate,
    max_log_weight,
    mean_kl,
    splits_by_column,
    truncated_log_weights,
    weight_diagnostics,
)
from pgrun.core.ppo import adapt_kl_beta, approx_kl, clipped_surrogate, ratio_surrogate
from pgrun.core.trpo import trpo_step
from pgrun.rollout.episodes import rollout_episodes
from pgrun.rollout.steps import episode_metrics, init_env_carry, initial_episode_metrics, rollout_steps
from pgrun.train.build import Components
from pgrun.train.state import ReuseState

NAN: jax.Array = np.float32(np.nan)  # type: ignore[assignment]  # JAX takes it as an array; no JAX op at import


def uses_offpolicy(est: EstimatorConfig) -> bool:
    """Whether the estimator needs this module's iteration rather than program.py's on-policy one."""
    return (est.rollout != "episodes" or est.correction != "none" or est.constraint != "none"
            or est.epochs > 1 or est.minibatches > 1 or est.value_coef is not None)


class Data(NamedTuple):
    """What every minibatch step needs, [T, B, ...] (split along T, B into minibatches)."""

    obs: jax.Array       # s_t
    action: jax.Array    # a_t
    logp_old: jax.Array  # log π_θ(a_t|s_t), behaviour
    adv: jax.Array       # A_t (0 on padding)
    target: jax.Array    # V_φ's regression target
    valid: jax.Array     # bool
    cont: jax.Array      # continue_t = 1 - done_t (episode segments, for `trajectory`)
    old: Any             # π_θ(·|s_t), every leaf broadcast to [T, B, ...]


def _tree_where(pred, a, b):
    return jax.tree_util.tree_map(lambda x, y: jnp.where(pred, x, y), a, b)


def make_offpolicy(cfg: Config, parts: Components, base_init: Callable, tx: optax.GradientTransformation,
                   critic_tx: optax.GradientTransformation) -> tuple[Callable, Callable, Callable]:
    """(init, sample, update) of the batch-reusing iteration described in the module docstring.

    parts: the run's env, policy and critic (`pgrun.train.build`); base_init: the on-policy
    init (params, critic, hp); tx: the policy's optimizer (over (θ, φ) when value_coef is
    set); critic_tx: V_φ's own optimizer otherwise.
    """
    env, env_params, policy, max_steps = parts.env, parts.env_params, parts.policy, parts.max_steps
    use_critic, critic_apply = parts.use_critic, parts.critic_apply
    est = cfg.estimator
    steps_mode = est.rollout == "steps"
    joint = est.value_coef is not None
    per_step_mean = est.correction == "clip" or est.constraint != "none"
    num_mb, num_epochs = int(est.minibatches), int(est.epochs)
    num_cols = int(cfg.num_envs) if steps_mode else int(cfg.episodes_per_iteration)
    split = split_columns if splits_by_column(est.rollout, est.correction) else split_transitions

    def init(key):
        state = base_init(key)
        key, k_env = jax.random.split(state.key)
        extra = ReuseState(env=init_env_carry(env, env_params, k_env, int(cfg.num_envs)) if steps_mode else (),
                           episodes=initial_episode_metrics() if steps_mode else (),
                           kl_beta=jnp.float32(est.kl_beta))
        if joint:
            return state._replace(opt_state=tx.init((state.params, state.critic_params)), critic_opt_state={},
                                  key=key, extra=extra)
        return state._replace(opt_state=tx.init(state.params), key=key, extra=extra)

    def sample(state):
        key, k_roll = jax.random.split(state.key)
        if not steps_mode:
            batch = rollout_episodes(env, env_params, policy, state.params, k_roll,
                                     int(cfg.episodes_per_iteration), max_steps)
            return state._replace(key=key), batch
        carry, batch, stats = rollout_steps(env, env_params, policy, state.params, k_roll, state.extra.env,
                                            int(cfg.num_steps), max_steps)
        extra = state.extra._replace(env=carry, episodes=episode_metrics(stats, state.extra.episodes))
        return state._replace(key=key, extra=extra), batch

    # ------------------------------------------------------------ one minibatch step

    def minibatch_loss(trainable: Any, mb: Data, beta: jax.Array,
                       entropy_coef: jax.Array) -> tuple[jax.Array, dict[str, jax.Array]]:
        params, phi = trainable if joint else (trainable, None)
        dist = policy.dist(params, mb.obs)
        logp = dist.log_prob(mb.action)
        log_rho = logp - mb.logp_old
        aux = {"approx_kl": approx_kl(jax.lax.stop_gradient(log_rho), mb.valid)}
        if est.correction == "clip":
            surrogate, aux["clip_frac"] = clipped_surrogate(log_rho, mb.adv, mb.valid, est.clip_eps)
            aux["log_weight_max"] = jnp.float32(-jnp.inf)  # PPO saturates its ratio: nothing overflows
        else:
            log_w = truncated_log_weights(jax.lax.stop_gradient(log_rho), mb.cont, mb.valid, est.correction,
                                          est.clip_weight)
            aux["log_weight_max"] = max_log_weight(log_w, mb.valid)
            w = jnp.where(mb.valid, jnp.exp(log_w), 0.0)
            scale = jnp.maximum(jnp.sum(mb.valid), 1) if per_step_mean else num_cols / num_mb
            surrogate, aux["clip_frac"] = is_surrogate(logp, mb.adv, w, mb.valid, scale), NAN
        loss = -surrogate - entropy_coef * masked_mean(dist.entropy(), mb.valid)
        if est.constraint == "kl_penalty":
            loss = loss + beta * mean_kl(mb.old, dist, mb.valid)
        aux["value_loss"] = NAN
        if est.value_coef is not None:
            aux["value_loss"] = value_loss(phi, critic_apply, mb.obs, mb.target, mb.valid.astype(jnp.float32))
            loss = loss + est.value_coef * aux["value_loss"]
        return loss, aux

    def minibatch_step(carry: tuple[Any, Any, jax.Array], mb: Data, beta: jax.Array,
                       entropy_coef: jax.Array) -> tuple[tuple[Any, Any, jax.Array], dict[str, jax.Array]]:
        trainable, opt_state, stopped = carry
        (loss, aux), grads = jax.value_and_grad(minibatch_loss, has_aux=True)(trainable, mb, beta, entropy_coef)
        updates, new_opt_state = tx.update(grads, opt_state, trainable)
        new_trainable = optax.apply_updates(trainable, updates)
        if est.target_kl is None:  # never skips: no selects over the parameters and optimizer state
            skip, carry = jnp.bool_(False), (new_trainable, new_opt_state, stopped)
        else:
            skip = stopped | (aux["approx_kl"] > est.target_kl)
            carry = (_tree_where(skip, trainable, new_trainable), _tree_where(skip, opt_state, new_opt_state), skip)
        return carry, dict(aux, loss=loss, grad_norm=optax.tree.norm(grads), applied=~skip)

    def run_epochs(trainable: Any, opt_state: Any, data: Data, key: jax.Array, beta: jax.Array,
                   entropy_coef: jax.Array) -> tuple[Any, Any, dict[str, jax.Array]]:
        """E epochs × M minibatch steps -> (trainable, opt_state, metrics averaged over the steps taken)."""
        def epoch(carry, k):
            return jax.lax.scan(lambda c, mb: minibatch_step(c, mb, beta, entropy_coef), carry,
                                split(k, data, num_mb))

        (trainable, opt_state, _), m = jax.lax.scan(epoch, (trainable, opt_state, jnp.bool_(False)),
                                                    jax.random.split(key, num_epochs))
        applied = m.pop("applied").astype(jnp.float32)
        n = jnp.sum(applied)
        # nanmax: once an overflowing step has made θ NaN, the later steps' log-weights are NaN too
        log_weight_max = jnp.nanmax(jnp.where(applied > 0, m.pop("log_weight_max"), -jnp.inf))
        out = {k: jnp.sum(jnp.where(applied > 0, v, 0.0)) / jnp.maximum(n, 1.0) for k, v in m.items()}
        out["log_weight_max"] = log_weight_max
        out["updates"] = n.astype(jnp.int32)
        return trainable, opt_state, out

    def trust_region(params: Any, data: Data, entropy_coef: jax.Array) -> tuple[Any, dict[str, jax.Array]]:
        def surrogate(p):
            dist = policy.dist(p, data.obs)
            log_rho = dist.log_prob(data.action) - data.logp_old
            return ratio_surrogate(log_rho, data.adv, data.valid) + entropy_coef * masked_mean(dist.entropy(),
                                                                                              data.valid)

        def kl(p):
            return mean_kl(data.old, policy.dist(p, data.obs), data.valid)

        new_params, ls, stats = trpo_step(surrogate, kl, params, est.max_kl, int(est.cg_iters), est.cg_damping,
                                          int(est.backtrack_iters), est.backtrack_coef)
        m = {"loss": -stats["surrogate"], "grad_norm": stats["grad_norm"], "clip_frac": NAN, "value_loss": NAN,
             "updates": ls.accepted.astype(jnp.int32), "trpo_ls_steps": ls.steps, "trpo_kl": ls.kl,
             "log_weight_max": jnp.float32(-jnp.inf)}  # the line search rejects a non-finite surrogate
        return new_params, m

    def critic_steps(phi, opt_state, obs, target, valid):
        def one(carry, _):
            phi, opt = carry
            loss, g = jax.value_and_grad(value_loss)(phi, critic_apply, obs, target, valid)
            u, opt = critic_tx.update(g, opt, phi)
            return (optax.apply_updates(phi, u), opt), loss

        (phi, opt_state), losses = jax.lax.scan(one, (phi, opt_state), None, length=int(est.critic_updates))
        return phi, opt_state, losses[0]

    # ------------------------------------------------------------ the iteration's update

    def update(state, batch):
        hp = state.hp
        valid = batch.valid.astype(jnp.float32)
        params, phi = state.params, state.critic_params
        old = batch.dist if batch.dist is not None else broadcast_dist(policy.dist(params, batch.obs),
                                                                        batch.valid.shape)
        if use_critic:
            v_t = critic_apply(phi, batch.obs)
            v_tp1 = next_state_values(lambda o: critic_apply(phi, o), batch, v_t, max_steps)
        else:
            v_t = v_tp1 = None
        advs = compute_advantages(batch, est.weight, est.baseline, hp.gamma, hp.gae_lambda, v_t, v_tp1)
        adv = normalize(advs.adv, valid) if est.normalize_advantages else advs.adv
        if est.gamma_t:  # step t's term × γ^t, t from the episode's start (steps mode: batch.episode_t)
            adv = discount_from_start(adv, batch, est.weight, hp.gamma)
        cont = 1.0 - (batch.terminated | batch.truncated).astype(jnp.float32)
        data = Data(batch.obs, batch.action, batch.log_prob, adv, advs.critic_target, batch.valid, cont, old)
        key, k_epochs = jax.random.split(state.key)
        beta = state.extra.kl_beta
        opt_state, critic_opt_state = state.opt_state, state.critic_opt_state

        if est.constraint == "trust_region":
            params, m = trust_region(params, data, hp.entropy_coef)
        else:
            trainable = (params, phi) if joint else params
            trainable, opt_state, m = run_epochs(trainable, opt_state, data, k_epochs, beta, hp.entropy_coef)
            params, phi = trainable if joint else (trainable, phi)
            m.pop("approx_kl")
            m.update(trpo_ls_steps=jnp.int32(0), trpo_kl=NAN)
        if use_critic and not joint:
            phi, critic_opt_state, m["value_loss"] = critic_steps(phi, critic_opt_state, batch.obs,
                                                                  advs.critic_target, valid)

        dist = policy.dist(params, batch.obs)
        log_rho = dist.log_prob(batch.action) - batch.log_prob
        kl = mean_kl(old, dist, batch.valid)
        m.update(weight_diagnostics(log_rho, cont, batch.valid, est.correction))
        m.update(kl_old_new=kl, entropy=masked_mean(dist.entropy(), batch.valid),
                 kl_beta=beta if est.constraint == "kl_penalty" else NAN)
        new_beta = adapt_kl_beta(beta, kl, est.kl_target) if est.constraint == "kl_penalty" else beta

        if steps_mode:
            episodes = dict(state.extra.episodes)
            steps = jnp.int32(batch.valid.size)
        else:
            ep_return, ep_length = jnp.sum(batch.reward, axis=0), jnp.sum(valid, axis=0)
            episodes = {"episodes": jnp.int32(batch.valid.shape[1]), "return_mean": ep_return.mean(),
                        "return_std": ep_return.std(), "return_min": ep_return.min(),
                        "return_max": ep_return.max(), "length_mean": ep_length.mean()}
            steps = jnp.sum(batch.valid).astype(jnp.int32)
        # an update used a weight exp(log w) that float32 cannot hold (log w > 88.72), or the
        # iteration went non-finite with weights whose squares float32 cannot hold (log w > 44.36:
        # gradient norms overflow): the run stops, naming importance-weight overflow as the cause
        finite = jnp.isfinite(m["loss"]) & jnp.isfinite(m["grad_norm"]) & ~(m["log_weight_max"] > LOG_FLOAT32_MAX)
        for tree in (params, phi):
            for leaf in jax.tree_util.tree_leaves(tree):
                finite = finite & jnp.all(jnp.isfinite(leaf))
        weight_overflow = ~finite & (m["log_weight_max"] > 0.5 * LOG_FLOAT32_MAX)
        new = state._replace(params=params, opt_state=opt_state, critic_params=phi,
                             critic_opt_state=critic_opt_state, key=key, iteration=state.iteration + 1,
                             env_steps=state.env_steps + steps, extra=state.extra._replace(kl_beta=new_beta))
        metrics = dict(m, **episodes, iteration=new.iteration, env_steps=new.env_steps, finite=finite,
                       weight_overflow=weight_overflow)
        return new, metrics

    return init, sample, update
