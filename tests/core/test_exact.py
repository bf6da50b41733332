"""Exact J and policy gradient of tabular MDPs (pgrun.core.exact) and the Chain env.

Checks: the Chain's tables and its sampled dynamics; the policy-gradient theorem
(`exact_grad_pgt`) against `jax.grad` of the backward recursion (`exact_J`); `exact_J`
against Monte-Carlo returns of episodes sampled with `pgrun.envs.step` / `reset`; the
notes-03 bandit; the chain rule through `logits_from_linear_theta`.
"""

import functools
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pgrun.core.exact import (
    BANDIT_REWARDS,
    BANDIT_STATE_PROBS,
    bandit_exact_grad,
    bandit_exact_J,
    bandit_mdp,
    exact_grad_pgt,
    exact_J,
    exact_J_forward,
    exact_J_untruncated,
    logits_from_linear_theta,
    state_visitation,
    tabular_policy,
)
from pgrun.envs import ENVS, make_env, reset, step
from pgrun.envs.chain import CLIFF, EXIT, EXITED, LEDGE, LEFT, RIGHT, START_CELLS, chain_mdp

CHAIN = make_env("Chain")  # one instance: it is a static (hashed) argument of mc_returns
H = CHAIN.max_episode_steps
S, A = 12, 3


def as_f64(mdp):
    return jax.tree.map(lambda x: x.astype(jnp.float64) if x.dtype == jnp.float32 else x, mdp)


def exit_averse_logits():
    """A policy that rarely exits: many episodes run into the 25-step limit."""
    logits = np.zeros((S, A))
    logits[:, EXIT] = -2.5
    logits[:, RIGHT] = 0.3
    return jnp.asarray(logits, jnp.float32)


# ------------------------------------------------------------------- the Chain env


def test_chain_tables():
    mdp = chain_mdp()
    P, R = np.asarray(mdp.P), np.asarray(mdp.R)
    assert P.shape == (S, A, S) and R.shape == (S, A)
    np.testing.assert_allclose(P.sum(-1), 1.0, atol=1e-6)
    assert (P >= 0).all()
    for s in (CLIFF, EXITED):  # absorbing terminals
        assert mdp.terminal[s] and (P[s, :, s] == 1).all()
    assert int(mdp.terminal.sum()) == 2
    assert (P[list(LEDGE), :2].max(-1) < 1).all()  # moves are stochastic
    np.testing.assert_allclose(P[1, LEFT, CLIFF], 0.8, atol=1e-6)
    np.testing.assert_allclose(P[10, RIGHT, 10], 0.9, atol=1e-6)  # wall
    rho0 = np.asarray(mdp.rho0)
    assert set(np.flatnonzero(rho0)) == set(START_CELLS)
    assert not rho0[np.asarray(mdp.terminal)].any()
    assert R.min() < 0 < R.max()
    assert ENVS["Chain"] is type(make_env("Chain"))


def test_chain_env_follows_tables():
    """Sampled transitions match P within 5 s.e.; rewards, observations, flags, resets exact."""
    env = CHAIN
    p = env.default_params
    n = 20_000
    keys = jax.random.split(jax.random.PRNGKey(0), n)
    many_steps = jax.jit(jax.vmap(lambda s, a, k: step(env, p, s, a, k, 0, H), (None, None, 0)))
    for s, a in [(1, LEFT), (5, RIGHT), (10, RIGHT), (4, EXIT)]:
        out = many_steps(jnp.int32(s), jnp.int32(a), keys)
        freq = np.bincount(np.asarray(out.state), minlength=S) / n
        prob = np.asarray(p.P[s, a])
        se = np.sqrt(prob * (1 - prob) / n) + 1e-12
        assert (np.abs(freq - prob) <= 5 * se).all(), (s, a, freq, prob)
        assert (np.asarray(out.reward) == float(p.R[s, a])).all()
        np.testing.assert_array_equal(np.asarray(out.obs), np.eye(S)[np.asarray(out.state)])
        np.testing.assert_array_equal(np.asarray(out.terminated),
                                      np.asarray(p.terminal)[np.asarray(out.state)])
    last = step(env, p, jnp.int32(5), LEFT, keys[0], H - 1, H)
    assert bool(last.truncated) and not bool(last.terminated)
    states, obs = jax.jit(jax.vmap(lambda k: reset(env, p, k)))(keys)
    freq = np.bincount(np.asarray(states), minlength=S) / n
    assert set(np.flatnonzero(freq)) == set(START_CELLS)
    np.testing.assert_allclose(freq[list(START_CELLS)], 0.25, atol=5 * np.sqrt(0.25 * 0.75 / n))
    assert obs.dtype == jnp.float32 and obs.shape == (n, S)


def test_chain_params_overrides():
    env = make_env("Chain")
    p = env.params_from_overrides({"slip": 0.4})
    np.testing.assert_allclose(float(p.P[5, RIGHT, 6]), 0.6, atol=1e-6)
    assert env.params_from_overrides(None) is env.default_params
    with pytest.raises(KeyError, match="valid keys"):
        env.params_from_overrides({"slipp": 0.1})


# ------------------------------------------------------- exact J: internal consistency


def test_tabular_policy():
    logits = jax.random.normal(jax.random.PRNGKey(0), (S, A))
    pi = tabular_policy(logits)
    np.testing.assert_allclose(pi.sum(-1), 1.0, atol=1e-6)
    np.testing.assert_allclose(tabular_policy(logits + 3.0), pi, atol=1e-6)
    np.testing.assert_allclose(pi[2], np.exp(logits[2]) / np.exp(logits[2]).sum(), rtol=1e-5)


def test_exact_J_forms_agree_and_truncation_is_exact():
    """Backward and forward J agree; H → ∞ gives the linear solve; at the exit-averse policy
    truncation changes J a lot (so the Monte-Carlo test below sees the finite horizon)."""
    with jax.enable_x64(True):
        mdp = as_f64(chain_mdp())
        for logits in [jnp.zeros((S, A)), exit_averse_logits().astype(jnp.float64),
                       jax.random.normal(jax.random.PRNGKey(3), (S, A), jnp.float64)]:
            pi = tabular_policy(logits)
            for gamma in (1.0, 0.9):
                for horizon in (1, H):
                    np.testing.assert_allclose(exact_J(mdp, pi, gamma, horizon),
                                               exact_J_forward(mdp, pi, gamma, horizon), rtol=1e-12)
                np.testing.assert_allclose(exact_J(mdp, pi, gamma, 2000),
                                           exact_J_untruncated(mdp, pi, gamma), rtol=1e-10)
        # one step: J = Σ_s ρ0(s) r_π(s)
        pi = tabular_policy(jnp.zeros((S, A), jnp.float64))
        np.testing.assert_allclose(exact_J(mdp, pi, 1.0, 1), mdp.rho0 @ (pi * mdp.R).sum(-1))
        pi = tabular_policy(exit_averse_logits().astype(jnp.float64))
        assert float(state_visitation(mdp, pi, H + 1)[H].sum()) > 0.3  # Pr(truncated)
        assert abs(float(exact_J(mdp, pi, 1.0, H) - exact_J_untruncated(mdp, pi, 1.0))) > 3.0


def ledge_value(policy, horizon=H, slip=0.2):
    """J (γ = 1) by a plain-Python recursion over (cell, steps left), written from the rules in the
    Chain docstring, not from `chain_mdp`'s tables: policy(cell) -> {action: probability}."""

    @functools.cache
    def v(cell, left):
        if left == 0 or cell in (0, 11):  # time limit, cliff, exited
            return 0.0
        total = 0.0
        for a, p in policy(cell).items():
            if a == EXIT:
                total += p * {2: 5.0, 10: 15.0}.get(cell, 0.0)
                continue
            step = -1 if a == LEFT else 1
            moves = [(cell + step, 1.0 - slip), (cell, slip / 2), (cell - step, slip / 2)]
            total += p * (-0.5 + sum(q * v(min(c, 10), left - 1) for c, q in moves))  # wall at 10
        return total

    return sum(v(c, horizon) for c in (3, 4, 5, 6)) / 4


def test_chain_design_values():
    """The numbers in the Chain docstring (uniform J = -0.595, best stationary deterministic policy
    J = 11.061), from a second implementation of the ledge; the solved threshold reached by exact
    gradient ascent with the tabular softmax."""
    env = CHAIN
    mdp = env.default_params
    uniform = ledge_value(lambda cell: {LEFT: 1 / 3, RIGHT: 1 / 3, EXIT: 1 / 3})
    best_hand = ledge_value(lambda cell: {EXIT: 1.0} if cell == 10 else {RIGHT: 1.0})
    assert round(uniform, 3) == -0.595 and round(best_hand, 3) == 11.061  # the docstring's figures
    np.testing.assert_allclose(exact_J(mdp, tabular_policy(jnp.zeros((S, A))), 1.0, H), uniform, rtol=1e-5)
    best = np.zeros((S, A))
    best[:, RIGHT] = 1.0
    best[10] = np.eye(A)[EXIT]
    np.testing.assert_allclose(exact_J(mdp, jnp.asarray(best), 1.0, H), best_hand, rtol=1e-5)

    def ascent(theta, _):
        theta = theta + 1.0 * exact_grad_pgt(mdp, theta, 1.0, H)
        return theta, exact_J(mdp, tabular_policy(theta), 1.0, H)

    _, js = jax.lax.scan(ascent, jnp.zeros((S, A)), None, length=400)
    assert float(js[-1]) >= env.solved_threshold > float(js[100])


# ------------------------------------------------ policy gradient theorem vs autodiff


@pytest.mark.parametrize("gamma", [1.0, 0.9])
@pytest.mark.parametrize("horizon", [1, 4, H])
def test_pgt_equals_autodiff(gamma, horizon):
    with jax.enable_x64(True):
        mdp = as_f64(chain_mdp())
        for seed in range(3):
            logits = 1.5 * jax.random.normal(jax.random.PRNGKey(seed), (S, A), jnp.float64)
            auto = jax.grad(lambda lg: exact_J(mdp, tabular_policy(lg), gamma, horizon))(logits)
            pgt = exact_grad_pgt(mdp, logits, gamma, horizon)
            np.testing.assert_allclose(pgt, auto, rtol=1e-10, atol=1e-12)
            assert float(jnp.abs(auto).max()) > 1e-3  # not trivially zero
            # terminal and unreachable rows carry no gradient
            assert float(jnp.abs(pgt[jnp.asarray([CLIFF, EXITED])]).max()) == 0.0


def test_pgt_float32_close_to_float64():
    """The runner works in float32: same gradient to ~1e-5 relative."""
    logits = jax.random.normal(jax.random.PRNGKey(7), (S, A))
    g32 = exact_grad_pgt(chain_mdp(), logits, 1.0, H)
    assert g32.dtype == jnp.float32
    with jax.enable_x64(True):
        g64 = exact_grad_pgt(as_f64(chain_mdp()), logits.astype(jnp.float64), 1.0, H)
    g64 = np.asarray(g64)
    np.testing.assert_allclose(g32, g64, atol=1e-5 * np.abs(g64).max())


# --------------------------------------------------------- exact J vs Monte-Carlo

N_EPISODES = 100_000


@partial(jax.jit, static_argnames=("env", "horizon", "n"))
def mc_returns(env, params, logits, gamma, horizon, key, n):
    """G = Σ_{t<T} γ^t r_t of n episodes sampled with step/reset -> (G, T, truncated), each [n].

    The policy sees only the observation: logits(obs) = obs @ logits (obs is one-hot).
    """

    def episode(k):
        k_reset, k_run = jax.random.split(k)
        state, obs = reset(env, params, k_reset)

        def body(carry, t):
            state, obs, alive, ret, length, trunc, k = carry
            k, k_act, k_step = jax.random.split(k, 3)
            action = jax.random.categorical(k_act, obs @ logits)
            out = step(env, params, state, action, k_step, t, horizon)
            ret = ret + jnp.where(alive, gamma**t * out.reward, 0.0)
            length = length + alive
            trunc = trunc | (alive & out.truncated)
            alive = alive & ~(out.terminated | out.truncated)
            return (out.state, out.obs, alive, ret, length, trunc, k), None

        init = (state, obs, jnp.bool_(True), jnp.float32(0), jnp.int32(0), jnp.bool_(False), k_run)
        (_, _, alive, ret, length, trunc, _), _ = jax.lax.scan(body, init, jnp.arange(horizon))
        return ret, length, trunc

    return jax.vmap(episode)(jax.random.split(key, n))


@pytest.mark.parametrize(
    "policy,gamma", [("uniform", 1.0), ("exit_averse", 1.0), ("exit_averse", 0.9), ("random", 0.95)]
)
def test_exact_J_matches_monte_carlo(policy, gamma):
    """|mean return - exact J| ≤ 4 standard errors over 100k episodes (fixed seed)."""
    env = CHAIN
    params = env.default_params
    logits = {
        "uniform": jnp.zeros((S, A)),
        "exit_averse": exit_averse_logits(),
        "random": jax.random.normal(jax.random.PRNGKey(11), (S, A)),
    }[policy]
    key = jax.random.PRNGKey(2024)
    ret, length, trunc = mc_returns(env, params, logits, gamma, H, key, N_EPISODES)
    ret = np.asarray(ret, np.float64)
    mean, se = ret.mean(), ret.std(ddof=1) / np.sqrt(N_EPISODES)
    exact = float(exact_J(params, tabular_policy(logits), gamma, H))
    z = (mean - exact) / se
    print(f"{policy} γ={gamma}: exact J={exact:.5f} MC={mean:.5f} ± {se:.5f} (z={z:+.2f}), "
          f"mean length {np.asarray(length).mean():.2f}, truncated {np.asarray(trunc).mean():.4f}")
    assert abs(z) <= 4.0
    if policy == "exit_averse":
        assert np.asarray(trunc).mean() > 0.3  # the time limit is exercised
    if policy == "exit_averse" and gamma == 1.0:
        # and MC sees the truncated-process J, not the untruncated one
        untrunc = float(exact_J_untruncated(params, tabular_policy(logits), gamma))
        assert abs(mean - untrunc) > 20 * se


# ------------------------------------------------------------------- the bandit


def test_bandit_exact():
    R = jnp.asarray(BANDIT_REWARDS)
    rho = jnp.asarray(BANDIT_STATE_PROBS)
    uniform = jnp.full((2, 2), 0.5)
    np.testing.assert_allclose(bandit_exact_J(uniform), 6.5, rtol=1e-6)
    best = jnp.asarray([[1.0, 0.0], [0.0, 1.0]])  # a1 in s1, a2 in s2
    np.testing.assert_allclose(bandit_exact_J(best), 8.5, rtol=1e-6)
    logits = jax.random.normal(jax.random.PRNGKey(5), (2, 2))
    pi = tabular_policy(logits)
    np.testing.assert_allclose(bandit_exact_J(pi), rho @ (pi * R).sum(-1), rtol=1e-6)
    closed_form = rho[:, None] * pi * (R - (pi * R).sum(-1, keepdims=True))
    np.testing.assert_allclose(bandit_exact_grad(logits), closed_form, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(bandit_exact_grad(jnp.zeros((2, 2))),
                               [[0.625, -0.625], [-0.375, 0.375]], rtol=1e-6)
    auto = jax.grad(lambda lg: bandit_exact_J(tabular_policy(lg)))(logits)
    np.testing.assert_allclose(bandit_exact_grad(logits), auto, rtol=1e-5, atol=1e-6)
    # the bandit MDP ends after one step whatever the horizon
    mdp = bandit_mdp()
    pi3 = jnp.concatenate([pi, jnp.full((1, 2), 0.5)])
    np.testing.assert_allclose(exact_J(mdp, pi3, 1.0, 10), bandit_exact_J(pi), rtol=1e-6)


# ------------------------------------------------- softmax-linear θ with a bias feature


def test_logits_from_linear_theta_chain_rule():
    theta = jax.random.normal(jax.random.PRNGKey(9), (A, S + 1))
    logits = np.asarray(logits_from_linear_theta(theta))
    flat_theta = np.asarray(theta).reshape(-1)
    # against the runner's feature map x(s, a) = one_hot(a) ⊗ [one_hot(s), 1], flat θ
    x = np.stack([np.stack([np.kron(np.eye(A)[a], np.concatenate([np.eye(S)[s], [1.0]]))
                            for a in range(A)]) for s in range(S)])  # [S, A, A·(S+1)]
    np.testing.assert_allclose(logits, x @ flat_theta, rtol=1e-5, atol=1e-6)
    with jax.enable_x64(True):
        mdp = as_f64(chain_mdp())
        theta = theta.astype(jnp.float64)
        auto = jax.grad(
            lambda th: exact_J(mdp, tabular_policy(logits_from_linear_theta(th)), 1.0, H))(theta)
        g = exact_grad_pgt(mdp, logits_from_linear_theta(theta), 1.0, H)  # [S, A]
        by_hand = jnp.concatenate([g.T, g.sum(0)[:, None]], axis=1)  # ∂J/∂θ[a,s], ∂J/∂θ[a,S]
        np.testing.assert_allclose(auto, by_hand, rtol=1e-10, atol=1e-12)
