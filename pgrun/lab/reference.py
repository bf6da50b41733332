"""Reference gradients ∇J(θ) to judge estimators against: exact where the env allows.

exact_grad:   autodiff of an exact objective J(θ) —
              Bandit:  `pgrun.envs.bandit.exact_J` (J = Σ_s p(s) Σ_a π(a|s) R(s,a));
              tabular envs whose params are a `pgrun.core.exact.TabularMDP` (Chain):
              `pgrun.core.exact.exact_J(mdp, π, γ, H)` of the truncated episodes the runner samples,
              with π[s] = π_θ(·|observation(s)).
              Returns None where no exact J is known (CartPole, Particle, ...).
expected_estimate: tabular envs, the exact mean of reward-to-go with or without γ^t
              (`pgrun.core.exact.expected_pg_surrogate`): with it ∇J, without it (γ < 1) not.
mc_reference: otherwise, the mean of an unbiased estimator over many independent batches,
              with its standard error per component (se = std / √M_ref).
Both flat [P] in `ravel_pytree(params)` order, ascent direction (+∇J).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree


def _tabular_mdp_type():
    try:  # pgrun.core.exact arrives with the tabular branch; absent before that merge
        from pgrun.core.exact import TabularMDP
    except ImportError:
        return None
    return TabularMDP


def exact_J_fn(env, env_params, policy, gamma: float, max_steps: int):
    """θ -> exact J(θ) for env, or None when the env has no exact objective."""
    if env.name == "Bandit":
        from pgrun.envs.bandit import exact_J
        return lambda p: exact_J(policy.dist, p, env_params)
    mdp_type = _tabular_mdp_type()
    if mdp_type is not None and isinstance(env_params, mdp_type):
        from pgrun.core.exact import exact_J as exact_J_tabular
        num_states = int(env_params.R.shape[0])
        obs = jax.vmap(lambda s: env.observation(s, None, env_params))(jnp.arange(num_states))
        obs = jnp.asarray(obs, jnp.float32)

        def J(p):
            pi = jnp.exp(policy.dist(p, obs).log_probs())  # [S, A]
            return exact_J_tabular(env_params, pi, gamma, int(max_steps))
        return J
    return None


def exact_grad(env, env_params, policy, params, gamma: float, max_steps: int):
    """Exact ∇_θ J(θ) flattened [P] (float64 numpy), or None if J is not known exactly."""
    J = exact_J_fn(env, env_params, policy, gamma, max_steps)
    if J is None:
        return None
    return np.asarray(ravel_pytree(jax.grad(J)(params))[0], np.float64)


def expected_estimate(env, env_params, policy, params, gamma: float, max_steps: int, gamma_t: bool):
    """The exact expectation [P] (float64 numpy) of the reward-to-go estimator on a tabular env
    (`pgrun.core.exact.expected_pg_surrogate`), with or without step t's γ^t; None for other envs.

    gamma_t=True gives ∇J; gamma_t=False the mean the plain form converges to, whose distance
    to ∇J is its exact bias for γ < 1 (any baseline that does not depend on a_t has the same mean).
    """
    mdp_type = _tabular_mdp_type()
    if mdp_type is None or not isinstance(env_params, mdp_type):
        return None
    from pgrun.core.exact import expected_pg_surrogate
    num_states = int(env_params.R.shape[0])
    obs = jnp.asarray(jax.vmap(lambda s: env.observation(s, None, env_params))(jnp.arange(num_states)), jnp.float32)

    def L(p):
        pi = jnp.exp(policy.dist(p, obs).log_probs())  # [S, A]
        return expected_pg_surrogate(env_params, pi, gamma, int(max_steps), bool(gamma_t))
    return np.asarray(ravel_pytree(jax.grad(L)(params))[0], np.float64)


def exact_value(env, env_params, policy, params, gamma: float, max_steps: int):
    """Exact J(θ) as a float, or None."""
    J = exact_J_fn(env, env_params, policy, gamma, max_steps)
    return None if J is None else float(J(params))


def mc_reference(grads: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Large-batch reference from M_ref independent gradient estimates [M_ref, P].

    -> (mean [P], standard error of the mean [P]).
    """
    grads = np.asarray(grads, np.float64)
    return grads.mean(0), grads.std(0, ddof=1) / np.sqrt(grads.shape[0])


def exact_state_value(env, env_params, policy, params):
    """V^π(s) as a critic function obs -> V for the one-step Bandit, else None.

    Bandit: V(s) = Σ_a π(a|s) R(s,a) — at the uniform policy b(s1) = 9.5, b(s2) = 3.5,
    the "average reward of the state" baseline of notes 03. obs = one_hot(s) [..., 2].
    """
    if env.name != "Bandit":
        return None
    obs = jnp.eye(2, dtype=jnp.float32)
    pi = jnp.exp(policy.dist(params, obs).log_probs())  # [2, 2]
    v = jnp.sum(pi * env_params.rewards, axis=-1)       # [2]
    return lambda o: o @ v
