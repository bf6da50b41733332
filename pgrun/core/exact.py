"""Exact objective J(π) and exact policy gradient for small tabular MDPs.

The process is the one the runner samples (`pgrun.envs.step` / `reset`):

  S_0 ~ ρ0;  A_t ~ π(·|S_t);  reward R_t = R(S_t, A_t);  S_{t+1} ~ P(·|S_t, A_t);
  the episode *terminates* after step t when S_{t+1} is terminal, and is *truncated*
  after step H - 1 (H = horizon = the env's max_episode_steps) otherwise.

  J(π) = E[ Σ_{t=0}^{T-1} γ^t R_t ],   T = min(first t ≥ 1 with S_t terminal, H).

Everything below is exact for this truncated process (for any H ≥ 1, γ ≥ 0), by
finite-horizon (time-indexed) dynamic programming. Because the time limit cuts episodes,
values depend on the time left: Q_t and V_t are indexed by t even though π is stationary.

Notation (shapes for S states, A actions):
  mdp.P [S, A, S]     P(s'|s, a), rows sum to 1 (terminal states absorbing)
  mdp.R [S, A]        expected reward R(s, a) of taking a in s
  mdp.rho0 [S]        start distribution; must put no mass on terminal states
  mdp.terminal [S]    bool
  P̃(s'|s,a) = P(s'|s,a)·1[s' not terminal]       "live" kernel [S, A, S]: move and go on
  r_π(s) = Σ_a π(a|s) R(s,a)  [S];   P̃_π(s, s') = Σ_a π(a|s) P̃(s'|s,a)  [S, S]

  Backward (policy evaluation):  V_H = 0,
      Q_t(s,a) = R(s,a) + γ Σ_{s'} P̃(s'|s,a) V_{t+1}(s'),   V_t(s) = Σ_a π(a|s) Q_t(s,a),
      J = Σ_s ρ0(s) V_0(s).
  Forward (state visitation):  d_0 = ρ0,  d_{t+1} = d_t P̃_π,  i.e.
      d_t(s) = Pr(S_t = s and the episode is still running at step t),
      J = Σ_{t<H} γ^t Σ_s d_t(s) r_π(s).
  Policy gradient theorem (finite horizon, time-indexed):
      ∇_θ J = Σ_{t<H} γ^t Σ_s d_t(s) Σ_a π(a|s) Q_t(s,a) ∇_θ log π(a|s).

`exact_J` uses the backward recursion; `exact_grad_pgt` the theorem (forward d_t, backward
Q_t, explicit softmax score), without autodiff; the tests check one against `jax.grad` of
the other. `exact_J_untruncated` solves the linear system of the process *without* a time
limit, for comparison only: it is not the runner's objective unless truncation never bites.

The two-state one-step bandit of notes 03 ("Example: Raw Returns") is expressed as a
one-step tabular MDP (`bandit_mdp`), so its exact J and gradient come from the same code.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct


@struct.dataclass
class TabularMDP:
    """Tables of a finite MDP; a pytree (all fields arrays), usable as env params.

    P [S, A, S] transition probabilities; R [S, A] expected rewards; rho0 [S] start
    distribution (no mass on terminal states); terminal [S] bool, terminal states absorbing.
    """

    P: jax.Array
    R: jax.Array
    rho0: jax.Array
    terminal: jax.Array

    @property
    def num_states(self) -> int:
        return self.R.shape[0]

    @property
    def num_actions(self) -> int:
        return self.R.shape[1]


# ----------------------------------------------------------------------------- policy


def tabular_policy(logits: jax.Array) -> jax.Array:
    """π(a|s) = exp(logits[s,a]) / Σ_b exp(logits[s,b]).   logits [S, A] -> π [S, A]."""
    return jax.nn.softmax(logits, axis=-1)


def softmax_score(pi: jax.Array) -> jax.Array:
    """∂ log π(a|s) / ∂ logits[s, b] = 1[a = b] - π(b|s)  for the tabular softmax.

    pi [S, A] -> score [S, A (a), A (b)]. (∂ log π(a|s) / ∂ logits[s', b] = 0 for s' ≠ s.)
    """
    eye = jnp.eye(pi.shape[-1], dtype=pi.dtype)
    return eye[None, :, :] - pi[:, None, :]


def logits_from_linear_theta(theta: jax.Array) -> jax.Array:
    """Logits of the softmax-linear policy with features x(s,a) = one_hot(a) ⊗ [one_hot(s), 1].

    logits[s, a] = θᵀx(s, a) = θ[a, s] + θ[a, S]   (the last column is a per-action bias).
    theta [A, S+1] -> logits [S, A]. The runner's flat θ of length A·(S+1) is
    `theta.reshape(A, S + 1)` (the Kronecker order of one_hot(a) ⊗ [s, 1]).

    The map is linear, so ∂J/∂θ[a, s] = ∂J/∂logits[s, a] and ∂J/∂θ[a, S] = Σ_s ∂J/∂logits[s, a];
    exact gradients w.r.t. θ: `jax.grad(lambda th: exact_J(mdp, tabular_policy(
    logits_from_linear_theta(th)), gamma, horizon))(theta)`, or the same chain rule applied
    to `exact_grad_pgt`.
    """
    num_states = theta.shape[-1] - 1
    s1 = jnp.concatenate(
        [jnp.eye(num_states, dtype=theta.dtype), jnp.ones((num_states, 1), theta.dtype)], axis=1
    )  # [S, S+1]: row s is the observation-with-bias [one_hot(s), 1]
    return s1 @ theta.T


# ---------------------------------------------------------------- policy-averaged tables


def live_transition(mdp: TabularMDP) -> jax.Array:
    """P̃(s'|s,a) = P(s'|s,a) · 1[s' not terminal]  [S, A, S]: the episode moves on to s'.

    The mass that lands on a terminal state leaves the process (the episode ended there).
    """
    alive = 1.0 - mdp.terminal.astype(mdp.P.dtype)
    return mdp.P * alive[None, None, :]


def policy_reward(mdp: TabularMDP, pi: jax.Array) -> jax.Array:
    """r_π(s) = Σ_a π(a|s) R(s,a).   pi [S, A] -> [S]."""
    return jnp.sum(pi * mdp.R, axis=-1)


def policy_live_transition(mdp: TabularMDP, pi: jax.Array) -> jax.Array:
    """P̃_π(s, s') = Σ_a π(a|s) P̃(s'|s,a).   pi [S, A] -> [S, S] (sub-stochastic rows)."""
    return jnp.einsum("sa,sat->st", pi, live_transition(mdp))


# ------------------------------------------------------------------ exact objective


@partial(jax.jit, static_argnames="horizon")
def exact_J(mdp: TabularMDP, pi: jax.Array, gamma: float | jax.Array, horizon: int) -> jax.Array:
    """Exact J(π) of episodes truncated after `horizon` steps, by backward recursion.

    V_H = 0;  V_t = r_π + γ P̃_π V_{t+1}  (t = H-1, ..., 0);  J = ρ0 · V_0.
    Exact for the process the runner samples: an episode stops after its terminating step
    (mass entering a terminal state leaves P̃) or after step H-1 (the recursion has H steps).
    pi [S, A], gamma scalar, horizon int (static) -> scalar. Differentiable in pi.
    """
    r_pi = policy_reward(mdp, pi)
    p_pi = policy_live_transition(mdp, pi)

    def backup(v_next, _):
        return r_pi + gamma * (p_pi @ v_next), None

    v0, _ = jax.lax.scan(backup, jnp.zeros_like(r_pi), None, length=horizon)
    return mdp.rho0 @ v0


@jax.jit
def exact_J_untruncated(mdp: TabularMDP, pi: jax.Array, gamma: float | jax.Array) -> jax.Array:
    """J(π) with no time limit: solve (I - γ P̃_π) V = r_π, J = ρ0 · V.

    Requires γ < 1 or termination with probability 1 under π. This is the H → ∞ limit
    of `exact_J`, NOT the runner's objective when truncation has positive probability.
    pi [S, A] -> scalar.
    """
    r_pi = policy_reward(mdp, pi)
    p_pi = policy_live_transition(mdp, pi)
    eye = jnp.eye(r_pi.shape[0], dtype=p_pi.dtype)
    return mdp.rho0 @ jnp.linalg.solve(eye - gamma * p_pi, r_pi)


@partial(jax.jit, static_argnames="horizon")
def q_values(mdp: TabularMDP, pi: jax.Array, gamma: float | jax.Array, horizon: int) -> jax.Array:
    """Time-indexed action values of the truncated process.

    Q_t(s,a) = R(s,a) + γ Σ_{s'} P̃(s'|s,a) V_{t+1}(s'),  V_t(s) = Σ_a π(a|s) Q_t(s,a),  V_H = 0.
    Q_t is the expected discounted reward-to-go from step t, with H - t steps left.
    pi [S, A] -> Q [H, S, A] (Q[t] = Q_t).
    """
    p_live = live_transition(mdp)

    def backup(v_next, _):
        q = mdp.R + gamma * jnp.einsum("sat,t->sa", p_live, v_next)
        return jnp.sum(pi * q, axis=-1), q

    _, q = jax.lax.scan(backup, jnp.zeros(mdp.R.shape[0], mdp.R.dtype), None,
                        length=horizon, reverse=True)
    return q


@partial(jax.jit, static_argnames="horizon")
def state_visitation(mdp: TabularMDP, pi: jax.Array, horizon: int) -> jax.Array:
    """d_t(s) = Pr(S_t = s and the episode still runs at step t), t = 0..H-1 (undiscounted).

    d_0 = ρ0, d_{t+1} = d_t P̃_π.  Σ_s d_t(s) = Pr(episode length > t).
    pi [S, A] -> d [H, S].
    """
    p_pi = policy_live_transition(mdp, pi)

    def advance(d, _):
        return d @ p_pi, d

    _, d = jax.lax.scan(advance, mdp.rho0.astype(p_pi.dtype), None, length=horizon)
    return d


@partial(jax.jit, static_argnames="horizon")
def exact_J_forward(mdp: TabularMDP, pi: jax.Array, gamma: float | jax.Array, horizon: int) -> jax.Array:
    """J = Σ_{t<H} γ^t Σ_s d_t(s) r_π(s): the forward form of `exact_J` (same value)."""
    d = state_visitation(mdp, pi, horizon)
    disc = gamma ** jnp.arange(horizon, dtype=d.dtype)
    return jnp.einsum("t,ts,s->", disc, d, policy_reward(mdp, pi))


# ------------------------------------------------------------------ exact gradient


@partial(jax.jit, static_argnames="horizon")
def exact_grad_pgt(mdp: TabularMDP, logits: jax.Array, gamma: float | jax.Array, horizon: int) -> jax.Array:
    """∇_logits J by the policy gradient theorem, computed explicitly (no autodiff).

    ∇J = Σ_{t<H} γ^t Σ_s d_t(s) Σ_a π(a|s) Q_t(s,a) ∇ log π(a|s), with the tabular softmax
    score ∂ log π(a|s)/∂ logits[s,b] = 1[a=b] - π(b|s), so
    ∂J/∂logits[s,b] = Σ_a [Σ_t γ^t d_t(s) Q_t(s,a)] π(a|s) (1[a=b] - π(b|s))
                    = Σ_t γ^t d_t(s) π(b|s) (Q_t(s,b) - V_t(s)).
    logits [S, A] -> [S, A].
    """
    pi = tabular_policy(logits)
    d = state_visitation(mdp, pi, horizon)  # [H, S]
    q = q_values(mdp, pi, gamma, horizon)  # [H, S, A]
    disc = gamma ** jnp.arange(horizon, dtype=d.dtype)  # [H]
    weighted_q = jnp.einsum("t,ts,tsa->sa", disc, d, q)  # Σ_t γ^t d_t(s) Q_t(s,a)
    return jnp.einsum("sa,sa,sab->sb", weighted_q, pi, softmax_score(pi))


@partial(jax.jit, static_argnames=("horizon", "gamma_t"))
def expected_pg_surrogate(mdp: TabularMDP, pi: jax.Array, gamma: float | jax.Array, horizon: int,
                          gamma_t: bool) -> jax.Array:
    """L(π) = Σ_{t<H} w_t Σ_s d_t(s) Σ_a π(a|s) Q_t(s,a), with d_t and Q_t held constant
    (stop-gradient), w_t = γ^t (gamma_t) or 1: differentiated at π, the EXPECTATION of the
    reward-to-go estimator Σ_t w_t ∇log π(a_t|s_t) G_t,

        E[Σ_t w_t ∇log π(a_t|s_t) G_t] = Σ_t w_t Σ_s d_t(s) Σ_a π(a|s) ∇log π(a|s) Q_t(s,a)

    (E[G_t | S_t = s, A_t = a, episode running] = Q_t(s,a)). gamma_t=True: w_t = γ^t, the
    policy gradient theorem, so ∇L = ∇J. gamma_t=False: the lecture's form without γ^t; for
    γ < 1 its ∇L ≠ ∇J — the exact bias of reward-to-go (and of any baseline-subtracted form
    of it) for the discounted objective. pi [S, A] -> scalar.
    """
    pi_now = jax.lax.stop_gradient(pi)
    d = state_visitation(mdp, pi_now, horizon)  # [H, S]
    q = q_values(mdp, pi_now, gamma, horizon)   # [H, S, A]
    w = gamma ** jnp.arange(horizon, dtype=d.dtype) if gamma_t else jnp.ones(horizon, d.dtype)
    return jnp.einsum("t,ts,sa,tsa->", w, d, pi, q)


# --------------------------------------------------- the two-state bandit of notes 03

BANDIT_REWARDS = np.array([[12.0, 7.0], [2.0, 5.0]], np.float32)
"""R(s, a) of notes 03 "Example: Raw Returns": rows s1, s2; columns a1, a2."""
BANDIT_STATE_PROBS = np.array([0.5, 0.5], np.float32)
"""ρ0 over (s1, s2): the two states are equally likely."""
BANDIT_HORIZON = 1
"""One-step episodes: every action ends the episode."""
BANDIT_REWARDS.flags.writeable = False
BANDIT_STATE_PROBS.flags.writeable = False


def bandit_mdp() -> TabularMDP:
    """The bandit as a one-step tabular MDP: states (s1, s2, end), `end` terminal.

    Every action in s1 or s2 moves to `end`, so each episode has one reward R(s, a).
    """
    P = np.zeros((3, 2, 3), np.float32)
    P[:, :, 2] = 1.0
    R = np.zeros((3, 2), np.float32)
    R[:2] = BANDIT_REWARDS
    rho0 = np.concatenate([BANDIT_STATE_PROBS, np.zeros(1, np.float32)])
    return TabularMDP(jnp.asarray(P), jnp.asarray(R), jnp.asarray(rho0),
                      jnp.asarray([False, False, True]))


def _pad_end_state(x: jax.Array) -> jax.Array:
    """[2, 2] per-state rows for (s1, s2) -> [3, 2] with a (never visited) zero row for `end`."""
    return jnp.concatenate([x, jnp.zeros((1, x.shape[1]), x.dtype)], axis=0)


def bandit_exact_J(pi: jax.Array) -> jax.Array:
    """J(π) = Σ_s ρ0(s) Σ_a π(a|s) R(s,a) for the notes-03 bandit.  pi [2, 2] -> scalar.

    Uniform π: J = ½(9.5 + 3.5) = 6.5; best deterministic π (a1 in s1, a2 in s2): 8.5.
    """
    return exact_J(bandit_mdp(), _pad_end_state(pi), 1.0, BANDIT_HORIZON)


def bandit_exact_grad(logits: jax.Array) -> jax.Array:
    """∇_logits J for the notes-03 bandit with a tabular softmax.  logits [2, 2] -> [2, 2].

    Closed form: ∂J/∂logits[s,b] = ρ0(s) π(b|s) (R(s,b) - Σ_a π(a|s) R(s,a)).
    """
    return exact_grad_pgt(bandit_mdp(), _pad_end_state(logits), 1.0, BANDIT_HORIZON)[:2]
