"""estimator.gamma_t: step t's term × γ^t, t from the episode's start (pgrun.core.estimators), and
the exact expectation of reward-to-go with and without it (pgrun.core.exact.expected_pg_surrogate).

Checks: the weights of a hand-built batch by hand, in episodes mode and in steps mode where one
episode began before the batch and another starts mid-batch; total_return untouched; the exact
expectation with γ^t equals ∇J (autodiff of exact_J and the explicit policy-gradient theorem),
and without it equals the policy-gradient theorem with undiscounted state weights, derived
here in numpy loops.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pgrun.core.batch import Batch
from pgrun.core.estimators import compute_advantages, discount_from_start, episode_time
from pgrun.core.exact import (
    exact_grad_pgt,
    exact_J,
    expected_pg_surrogate,
    q_values,
    state_visitation,
    tabular_policy,
)
from pgrun.envs import make_env

F, T_ = False, True


def _batch(reward, terminated, truncated, valid=None, episode_t=None):
    T, B = np.shape(reward)
    return Batch(obs=jnp.zeros((T, B, 1)), action=jnp.zeros((T, B), jnp.int32), log_prob=jnp.zeros((T, B)),
                 reward=jnp.asarray(reward, jnp.float32), terminated=jnp.asarray(terminated),
                 truncated=jnp.asarray(truncated),
                 valid=jnp.ones((T, B), bool) if valid is None else jnp.asarray(valid),
                 next_obs=jnp.zeros((T, B, 1)),
                 episode_t=None if episode_t is None else jnp.asarray(episode_t, jnp.int32))


def test_episodes_mode_weights_by_hand():
    """Two episodes from row 0, γ = 0.5. Column 0: rewards 1, 2, 4 then terminated (row 3 padding);
    column 1: rewards 8, 0, 0, 2, cut by the time limit at row 3."""
    g = 0.5
    b = _batch([[1, 8], [2, 0], [4, 0], [0, 2]], [[F, F], [F, F], [T_, F], [F, F]],
               [[F, F], [F, F], [F, F], [F, T_]], valid=[[T_, T_], [T_, T_], [T_, T_], [F, T_]])
    np.testing.assert_array_equal(episode_time(b), [[0, 0], [1, 1], [2, 2], [3, 3]])
    adv = compute_advantages(b, "reward_to_go", "none", g, 0.0).adv
    # G_t by hand: col 0: G2 = 4, G1 = 2 + .5·4 = 4, G0 = 1 + .5·4 = 3; col 1: G3 = 2, G2 = 1, G1 = .5, G0 = 8.25
    np.testing.assert_allclose(adv, [[3, 8.25], [4, 0.5], [4, 1], [0, 2]], rtol=1e-6)
    # × γ^t: rows × 1, .5, .25, .125
    np.testing.assert_allclose(discount_from_start(adv, b, "reward_to_go", g),
                               [[3, 8.25], [2, 0.25], [1, 0.25], [0, 0.25]], rtol=1e-6)
    # batch-mean baseline (LOO over 2 episodes: the other's G(τ)): G(τ_0) = 1 + 1 + 1 = 3, G(τ_1) = 8.25
    adv_b = compute_advantages(b, "reward_to_go", "batch_mean", g, 0.0).adv
    np.testing.assert_allclose(discount_from_start(adv_b, b, "reward_to_go", g),
                               [[3 - 8.25, 8.25 - 3], [(4 - 8.25) / 2, (0.5 - 3) / 2],
                                [(4 - 8.25) / 4, (1 - 3) / 4], [0, (2 - 3) / 8]], rtol=1e-6)
    # total return: G(τ) already discounted from t = 0, no factor
    adv_tr = compute_advantages(b, "total_return", "none", g, 0.0).adv
    np.testing.assert_array_equal(discount_from_start(adv_tr, b, "total_return", g), adv_tr)


def test_steps_mode_counts_t_from_the_episode_start_not_the_batch_start():
    """Steps mode, γ = 0.5. Column 0: an episode that began 3 steps before the batch (episode_t
    3, 4) terminates at row 1; a new one starts at row 2 (0, 1) and runs past the batch's end.
    Column 1: an episode that starts at row 0. Rewards 1 everywhere."""
    g = 0.5
    b = _batch(np.ones((4, 2)), [[F, F], [T_, F], [F, F], [F, F]], np.zeros((4, 2), bool),
               episode_t=[[3, 0], [4, 1], [0, 2], [1, 3]])
    np.testing.assert_array_equal(episode_time(b), [[3, 0], [4, 1], [0, 2], [1, 3]])
    adv = compute_advantages(b, "reward_to_go", "none", g, 0.0).adv
    # G by hand (cut at the terminal step and at the batch's end): col 0: 1.5, 1, 1.5, 1; col 1: 1.875, 1.75, 1.5, 1
    np.testing.assert_allclose(adv, [[1.5, 1.875], [1, 1.75], [1.5, 1.5], [1, 1]], rtol=1e-6)
    np.testing.assert_allclose(discount_from_start(adv, b, "reward_to_go", g),
                               [[1.5 / 8, 1.875], [1 / 16, 1.75 / 2], [1.5, 1.5 / 4], [1 / 2, 1 / 8]], rtol=1e-6)
    # the same batch read as episodes mode (row index) would weigh the new episode's first step by γ^2
    b_rows = b._replace(episode_t=None)
    assert float(discount_from_start(adv, b_rows, "reward_to_go", g)[2, 0]) == pytest.approx(1.5 / 4)
    # gae weights are multiplied the same way
    v = jnp.zeros((4, 2))
    a_gae = compute_advantages(b, "gae", "value", g, 1.0, v, v).adv
    np.testing.assert_allclose(discount_from_start(a_gae, b, "gae", g),
                               np.asarray(a_gae) * g ** np.array([[3, 0], [4, 1], [0, 2], [1, 3]]), rtol=1e-6)


def _plain_pgt_numpy(mdp, logits, gamma, H):
    """∂/∂logits[s, b] of E[Σ_t ∇log π(a_t|s_t) G_t] (no γ^t), from the score-function form:
    Σ_t Σ_s d_t(s) Σ_a π(a|s) Q_t(s,a) (1[a=b] − π(b|s)), in numpy loops over d_t and Q_t."""
    pi = np.asarray(tabular_policy(logits), np.float64)
    d = np.asarray(state_visitation(mdp, jnp.asarray(pi, jnp.float32), H), np.float64)
    q = np.asarray(q_values(mdp, jnp.asarray(pi, jnp.float32), gamma, H), np.float64)
    S, A = pi.shape
    out = np.zeros((S, A))
    for t in range(H):
        for s in range(S):
            for a in range(A):
                for b in range(A):
                    out[s, b] += d[t, s] * pi[s, a] * q[t, s, a] * ((a == b) - pi[s, b])
    return out


@pytest.mark.parametrize("gamma", [0.9, 1.0])
def test_exact_expectation_of_reward_to_go_with_and_without_gamma_t(gamma):
    env = make_env("Chain")
    mdp, H = env.default_params, env.max_episode_steps
    logits = jnp.asarray(np.random.default_rng(0).normal(0.0, 0.5, (12, 3)), jnp.float32)

    def expected(gamma_t):
        return np.asarray(jax.grad(lambda lg: expected_pg_surrogate(mdp, tabular_policy(lg), gamma, H, gamma_t))(
            logits), np.float64)

    with_gt, plain = expected(True), expected(False)
    grad_J = np.asarray(jax.grad(lambda lg: exact_J(mdp, tabular_policy(lg), gamma, H))(logits), np.float64)
    np.testing.assert_allclose(with_gt, grad_J, atol=2e-6)
    np.testing.assert_allclose(with_gt, np.asarray(exact_grad_pgt(mdp, logits, gamma, H)), atol=2e-6)
    np.testing.assert_allclose(plain, _plain_pgt_numpy(mdp, logits, gamma, H), atol=2e-5)
    gap = np.linalg.norm(plain - grad_J) / np.linalg.norm(grad_J)
    if gamma == 1.0:
        assert gap < 1e-5  # undiscounted: the lecture's form is ∇J
    else:
        assert gap > 0.05  # discounted: without γ^t it is not
