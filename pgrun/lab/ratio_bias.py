"""Sequence- vs token-level importance ratios as trajectory- vs per-decision IS, exactly.

Tiny Tokens instance (tabular prefix policy): behaviour θ_old, target θ. Completions o are
sampled from π_old; for each estimator the *expected* gradient E_{o~π_old}[ĝ(o)] is computed by
enumeration of every (prompt, string) (`pgrun.core.sequences`), so bias is exact, not sampled.
With A(o) = R(o) (no baseline: the question here is the ratio) and ℓ_t = log π_θ(o_t|s_t) −
log π_old(o_t|s_t) over the |o| sampled tokens:

    sequence (trajectory IS):  ĝ = ∇_θ [ exp(Σ_t ℓ_t) · A ]               E = ∇J(θ)  (unbiased)
    token (PPO/GRPO, per-decision, unclipped):  ĝ = ∇_θ [ Σ_t exp(ℓ_t) · A ]
    GSPO (length-normalised sequence ratio):    ĝ = ∇_θ [ exp((1/|o|) Σ_t ℓ_t) · A ]

Each expectation is the gradient of the expected surrogate S(θ) = E_old[surrogate(o; θ)], so
`jax.grad` of the enumerated S gives it exactly. Effective sample size per sample of a weight w
(the population value of Kish's ESS/n): (E_old w)² / E_old[w²]; for the sequence ratio E w = 1.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from pgrun.core.sequences import episode_end, prefix_obs
from pgrun.lab.token_instance import token_instance

TINY = ["env=Tokens", "env.task=copy", "env.prompt_len=1", "env.vocab=2", "policy=tabular_prefix",
        "+env.params.token_reward=0.5", "gamma=1.0", "num_seeds=1", "estimator=reinforce"]


def token_log_probs(dist_fn, params: Any, prompts: jax.Array, strings: jax.Array, vocab: int) -> jax.Array:
    """log π(a_t | x, a_<t) for every prompt, string and t.  prompts [M, P], strings [K, H] -> [M, K, H]."""
    def one_prompt(x):
        obs = jax.vmap(lambda a: prefix_obs(x, a, vocab))(strings)  # [K, H, L]
        return dist_fn(params, obs).log_prob(strings)                # [K, H]
    return jax.vmap(one_prompt)(prompts)


def expected_surrogates(lp_old: jax.Array, lp: jax.Array, live: jax.Array, returns: jax.Array,
                        A: int) -> dict[str, jax.Array]:
    """E_old of each surrogate (module docstring) by enumeration.

    lp_old, lp [M, K, H] per-token log-probs under θ_old and θ; live [K, H] (t < e(a)); returns
    [M, K]; A the number of actions. String weight under π_old: Π_{t<e} π_old · A^{-(H-e)}.
    -> {"sequence", "token", "gspo": scalar} (each the mean over prompts).
    """
    ell = jnp.where(live, lp - jax.lax.stop_gradient(lp_old), 0.0)            # [M, K, H]
    w_old = jnp.exp(jnp.sum(jnp.where(live, lp_old, -jnp.log(float(A))), axis=-1))  # [M, K]
    n = live.sum(-1)                                                            # [K] = |o|
    s_seq = jnp.exp(ell.sum(-1))
    s_tok = jnp.sum(jnp.where(live, jnp.exp(ell), 0.0), axis=-1)
    s_gspo = jnp.exp(ell.sum(-1) / n)
    return {k: jnp.mean(jnp.sum(w_old * s * returns, axis=1))
            for k, s in (("sequence", s_seq), ("token", s_tok), ("gspo", s_gspo))}


def ratio_bias(horizon: int, steps: int = 0, lr: float = 1.0, perturb: float = 0.5, theta_seed: int = 42,
               overrides: tuple[str, ...] = ()) -> dict[str, Any]:
    """θ_old ~ N(0, 1) per logit; θ = θ_old + perturb·N(0, 1) per logit (the same drift at every state,
    so the sequence's divergence grows with H), then `steps` exact gradient-ascent steps of size lr on J.

    -> {"theta_old", "theta" (the params), "J_old", "J", "grad_norm",
        "bias" {est: ‖E ĝ − ∇J(θ)‖/‖∇J(θ)‖}, "cosine" {est: cos(E ĝ, ∇J)},
        "on_policy_bias" {est: the same at θ = θ_old}, "ess" {"sequence", "gspo", "token_min"}: ESS/n
        of the sequence ratio, of GSPO's ratio and the smallest per-position token ratio ESS}.
    """
    inst = token_instance([*TINY, f"env.horizon={horizon}", *overrides], theta_seed)
    env, policy = inst.parts.env, inst.parts.policy
    theta_old, prompts, strings, returns = inst.theta, inst.prompts, inst.strings, inst.returns
    A, H = env.vocab + 1, env.horizon
    live = jnp.arange(H)[None, :] < episode_end(strings, env.vocab)[:, None]

    J = inst.J
    theta = jax.tree_util.tree_map(
        lambda x: x + perturb * jax.random.normal(jax.random.PRNGKey(theta_seed + 1), x.shape), theta_old)
    for _ in range(steps):
        theta = jax.tree_util.tree_map(lambda p, g: p + lr * g, theta, jax.grad(J)(theta))
    lp_old = token_log_probs(policy.dist, theta_old, prompts, strings, env.vocab)

    def expected(target):
        grads = {k: jax.grad(lambda p, k=k: expected_surrogates(
            lp_old, token_log_probs(policy.dist, p, prompts, strings, env.vocab), live, returns, A)[k])(target)
            for k in ("sequence", "token", "gspo")}
        true = np.asarray(ravel_pytree(jax.grad(J)(target))[0], np.float64)
        flat = {k: np.asarray(ravel_pytree(g)[0], np.float64) for k, g in grads.items()}
        bias = {k: float(np.linalg.norm(v - true) / np.linalg.norm(true)) for k, v in flat.items()}
        cos = {k: float(v @ true / (np.linalg.norm(v) * np.linalg.norm(true))) for k, v in flat.items()}
        return bias, cos, float(np.linalg.norm(true))

    bias, cos, gnorm = expected(theta)
    on_policy_bias, _, _ = expected(theta_old)
    lp = token_log_probs(policy.dist, theta, prompts, strings, env.vocab)
    ell = jnp.where(live, lp - lp_old, 0.0)
    w_old = jnp.exp(jnp.sum(jnp.where(live, lp_old, -jnp.log(float(A))), axis=-1)) / prompts.shape[0]  # sums to 1

    def ess(w):  # w [M, K]
        return float(jnp.sum(w_old * w) ** 2 / jnp.sum(w_old * w ** 2))

    n = live.sum(-1)
    # token ratio at position t, over the episodes that reach t (E_old[ρ_t | reach t] = 1)
    def tok_ess(t):
        rho, reach = jnp.where(live[:, t], jnp.exp(ell[..., t]), 0.0), jnp.sum(w_old * live[:, t])
        return float(jnp.sum(w_old * rho) ** 2 / (reach * jnp.sum(w_old * rho ** 2)))

    tok = [tok_ess(t) for t in range(H)]
    return {"horizon": H, "theta_old": jax.tree_util.tree_map(np.asarray, theta_old),
            "theta": jax.tree_util.tree_map(np.asarray, theta),
            "J_old": float(J(theta_old)), "J": float(J(theta)), "grad_norm": gnorm,
            "bias": bias, "cosine": cos, "on_policy_bias": on_policy_bias,
            "ess": {"sequence": ess(jnp.exp(ell.sum(-1))), "gspo": ess(jnp.exp(ell.sum(-1) / n)),
                    "token_min": min(tok)}}
