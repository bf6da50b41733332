"""The optimal baseline b*_k = E[g_k u_k] / E[g_k²] (notes 03, Appendix C; u = g R for total-return
weights): leave-one-out inside a batch, and from decayed running sums over previous batches."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import make_config
from jax.flatten_util import ravel_pytree

from pgrun.core.estimators import compute_advantages, pg_loss
from pgrun.core.exact import BANDIT_REWARDS
from pgrun.core.optimal_baseline import (
    BaselineStats,
    episode_returns,
    episode_scores,
    episode_scores_and_weighted,
    loo_optimal_baseline,
    optimal_baseline,
    optimal_baseline_grad,
    optimal_baseline_grad_flat,
    running_optimal_baseline,
    running_optimal_baseline_grad_flat,
    update_baseline_stats,
)
from pgrun.core.policies import softmax_linear
from pgrun.envs import make_env
from pgrun.envs.bandit import exact_J
from pgrun.lab.gradients import batched_grads, make_grad_fn, sample_batches


def test_b_star_matches_hand_computation():
    g = jnp.array([[1.0, 0.0], [2.0, 1.0], [0.0, 3.0]])
    R = jnp.array([1.0, 2.0, 3.0])
    # whole batch: b_0 = (1·1 + 4·2) / (1 + 4) = 9/5;  b_1 = (1·2 + 9·3) / (1 + 9) = 29/10
    np.testing.assert_allclose(optimal_baseline(g, R), [9 / 5, 29 / 10], rtol=1e-6)
    # leave-one-out, row i excludes episode i
    expected = np.array([[8 / 4, 29 / 10],      # without episode 0
                         [1 / 1, 27 / 9],       # without episode 1
                         [9 / 5, 2 / 1]])       # without episode 2
    np.testing.assert_allclose(loo_optimal_baseline(g, R), expected, rtol=1e-6)
    grad = np.mean(np.asarray(g) * (np.asarray(R)[:, None] - expected), axis=0)
    np.testing.assert_allclose(optimal_baseline_grad_flat(g, R), grad, rtol=1e-6)


def test_running_b_star_and_sums_match_hand_computation():
    """b_{k,-i} = (λ S_gu + Σ_{j≠i} g_jk u_jk) / (λ S_gg + Σ_{j≠i} g_jk²), then S ← λ S + Σ_j, by hand."""
    g = jnp.array([[1.0, 0.0], [2.0, 1.0], [0.0, 3.0]])
    R = jnp.array([1.0, 2.0, 3.0])
    u = g * R[:, None]  # total-return weights: g·u = g²R = [[1, 0], [8, 2], [0, 27]], g² = [[1, 0], [4, 1], [0, 9]]
    stats = BaselineStats(gu=jnp.array([2.0, 4.0]), gg=jnp.array([1.0, 2.0]))
    # λ = 0.5: history λS_gu = [1, 2], λS_gg = [0.5, 1]
    expected_b = np.array([[(1 + 8) / (0.5 + 4), (2 + 29) / (1 + 10)],     # without episode 0
                           [(1 + 1) / (0.5 + 1), (2 + 27) / (1 + 9)],      # without episode 1
                           [(1 + 9) / (0.5 + 5), (2 + 2) / (1 + 1)]])      # without episode 2
    b = running_optimal_baseline(stats, g, u, 0.5, jnp.full((3,), -99.0))
    np.testing.assert_allclose(b, expected_b, rtol=1e-6)
    grad, new = running_optimal_baseline_grad_flat(stats, g, u, 0.5, jnp.full((3,), -99.0))
    # k = 0: [(1 - 2·1) + (4 - 4/3·2) + 0] / 3 = 1/9;  k = 1: [0 + (2 - 2.9·1) + (9 - 2·3)] / 3 = 0.7
    np.testing.assert_allclose(grad, [1 / 9, 0.7], rtol=1e-6)
    np.testing.assert_allclose(new.gu, [0.5 * 2 + 9, 0.5 * 4 + 29], rtol=1e-6)
    np.testing.assert_allclose(new.gg, [0.5 * 1 + 5, 0.5 * 2 + 10], rtol=1e-6)
    # λ = 0 is the leave-one-out of the batch alone
    np.testing.assert_allclose(running_optimal_baseline(stats, g, u, 0.0, jnp.zeros(3)), loo_optimal_baseline(g, R),
                               rtol=1e-6)


def test_running_baseline_matches_a_loop_over_batches_with_general_weights():
    """A second implementation (numpy loops) over three batches, u not proportional to g (reward-to-go)."""
    rng = np.random.default_rng(1)
    lam, N, P = 0.7, 5, 4
    batches = [(rng.normal(size=(N, P)), rng.normal(size=(N, P)), rng.normal(size=N)) for _ in range(3)]
    stats = BaselineStats(jnp.zeros(P), jnp.zeros(P))
    history = []  # (g, u) of the batches so far, each with weight λ^age
    for g, u, fb in batches:
        grad, stats = running_optimal_baseline_grad_flat(stats, jnp.asarray(g, jnp.float32),
                                                         jnp.asarray(u, jnp.float32), lam, jnp.asarray(fb, jnp.float32))
        want = np.zeros(P)
        for i in range(N):
            num = sum(lam ** (len(history) - a) * np.sum(hg * hu, axis=0) for a, (hg, hu) in enumerate(history))
            den = sum(lam ** (len(history) - a) * np.sum(hg**2, axis=0) for a, (hg, hu) in enumerate(history))
            others = [j for j in range(N) if j != i]
            num = num + np.sum(g[others] * u[others], axis=0)
            den = den + np.sum(g[others] ** 2, axis=0)
            want += (u[i] - num / den * g[i]) / N
        np.testing.assert_allclose(grad, want, rtol=1e-4, atol=1e-5)
        history.append((g, u))
    np.testing.assert_allclose(stats.gg, sum(lam ** (2 - a) * np.sum(g**2, axis=0)
                                             for a, (g, _, _) in enumerate(batches)), rtol=1e-5)


def test_update_of_the_sums_by_hand():
    s = update_baseline_stats(BaselineStats(jnp.array([4.0]), jnp.array([2.0])), jnp.array([[1.0], [3.0]]),
                              jnp.array([[2.0], [-1.0]]), 0.25)
    assert float(s.gu[0]) == pytest.approx(0.25 * 4 + (1 * 2 + 3 * -1))   # 0
    assert float(s.gg[0]) == pytest.approx(0.25 * 2 + (1 + 9))             # 10.5


def test_loo_fallback_when_no_other_episode_has_score():
    # coordinate 0 is non-zero only in episode 0: Σ_{j≠0} g_j0² = 0 exactly -> the LOO mean return
    g = jnp.array([[1e-3], [0.0], [0.0]])
    R = jnp.array([10.0, 2.0, 3.0])
    b = loo_optimal_baseline(g, R)
    assert float(b[0, 0]) == pytest.approx(2.5)


def test_loo_matches_brute_force():
    rng = np.random.default_rng(0)
    g, R = rng.normal(size=(7, 5)).astype(np.float32), rng.normal(size=7).astype(np.float32)
    brute = np.stack([optimal_baseline(jnp.delete(g, i, axis=0), jnp.delete(R, i)) for i in range(7)])
    np.testing.assert_allclose(loo_optimal_baseline(jnp.asarray(g), jnp.asarray(R)), brute, rtol=1e-5)


M, N = 2000, 4


@pytest.fixture(scope="module")
def bandit():
    env = make_env("Bandit")
    policy = softmax_linear(2, 2)
    params = {"theta": jnp.array([0.3, -0.2, 0.1, -0.3, 0.2, -0.1], jnp.float32)}  # not uniform
    batches = sample_batches(env, env.default_params, policy, params, jax.random.split(jax.random.PRNGKey(7), M), N, 1)
    return env, env.default_params, policy, params, batches


def test_episode_scores_and_pytree(bandit):
    env, env_params, policy, params, batches = bandit
    batch = jax.tree_util.tree_map(lambda x: x[0], batches)
    g = jax.jit(episode_scores, static_argnums=0)(policy, params, batch)
    one = jax.jit(jax.grad(lambda p, o, a: policy.dist(p, o).log_prob(a)))
    for i in range(N):  # per-episode gradient of log π(a|s), by hand
        np.testing.assert_allclose(g[i], one(params, batch.obs[0, i], batch.action[0, i])["theta"],
                                   rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(episode_returns(batch, 0.9), batch.reward[0])
    tree = jax.jit(optimal_baseline_grad, static_argnums=0)(policy, params, batch, 0.9)
    assert jax.tree_util.tree_structure(tree) == jax.tree_util.tree_structure(params)
    np.testing.assert_allclose(ravel_pytree(tree)[0], optimal_baseline_grad_flat(g, batch.reward[0]), rtol=1e-6)


def test_weighted_scores_are_the_per_episode_surrogate_gradients(bandit):
    """u_i = Σ_t ∇log π(a_t|s_t) Ψ_t: its sum over episodes is -N ∇pg_loss (a second implementation),
    and total-return weights give u_i = g_i R_i."""
    env, env_params, policy, params, _ = bandit
    chain = make_env("Chain")
    cpol = softmax_linear(12, 3)
    cparams = jax.tree_util.tree_map(lambda x: x + 0.3 * jax.random.normal(jax.random.PRNGKey(0), x.shape),
                                     cpol.init(jax.random.PRNGKey(1)))
    batch = sample_batches(chain, chain.default_params, cpol, cparams, jax.random.split(jax.random.PRNGKey(2), 1), 6,
                           25)
    batch = jax.tree_util.tree_map(lambda x: x[0], batch)
    for weight in ("reward_to_go", "total_return"):
        psi = compute_advantages(batch, weight, "none", 0.9, 0.0).adv
        g, u = jax.jit(episode_scores_and_weighted, static_argnums=0)(cpol, cparams, batch, psi)
        np.testing.assert_allclose(g, episode_scores(cpol, cparams, batch), rtol=1e-5, atol=1e-6)
        want = -6 * ravel_pytree(jax.grad(lambda p, w: pg_loss(p, cpol, batch, w, 0.0)[0])(cparams, psi))[0]
        np.testing.assert_allclose(u.sum(0), want, rtol=1e-4, atol=1e-5)
        assert float(jnp.abs(u).max()) > 0.1  # not trivially zero
    np.testing.assert_allclose(u, g * episode_returns(batch, 0.9)[:, None], rtol=1e-4, atol=1e-5)


def test_unbiased_and_lower_variance_on_bandit(bandit):
    """Monte-Carlo mean over M = 2000 batches of N = 4 episodes vs the exact ∇J, and variance vs REINFORCE.

    Tolerance: every component within 4.5 standard errors (Bonferroni over 6 components:
    a false alarm has probability < 6 · 7e-6); the seed is fixed, so the test is deterministic.
    """
    env, env_params, policy, params, batches = bandit
    G_opt = batched_grads(make_grad_fn("optimal_baseline_loo", policy, 1.0), params, batches)
    G_rf = batched_grads(make_grad_fn("reinforce", policy, 1.0), params, batches)
    exact = np.asarray(jax.grad(lambda p: exact_J(policy.dist, p, env_params))(params)["theta"])
    se = G_opt.std(0, ddof=1) / np.sqrt(M)
    z = (G_opt.mean(0) - exact) / se
    assert np.max(np.abs(z)) < 4.5, z
    # same batches (common random numbers): the optimal baseline has no more variance
    assert G_opt.var(0, ddof=1).sum() <= G_rf.var(0, ddof=1).sum()
    # and REINFORCE is unbiased too on the same batches (sanity of the reference)
    z_rf = (G_rf.mean(0) - exact) / (G_rf.std(0, ddof=1) / np.sqrt(M))
    assert np.max(np.abs(z_rf)) < 4.5, z_rf


def test_plug_in_baseline_is_biased_for_small_batches(bandit):
    """Why leave-one-out: the whole-batch b* (own episode included) biases the estimate."""
    env, env_params, policy, params, _ = bandit
    M, N = 4000, 2
    batches = sample_batches(env, env_params, policy, params, jax.random.split(jax.random.PRNGKey(3), M), N, 1)

    def plug_in(p, b):
        g, R = episode_scores(policy, p, b), episode_returns(b, 1.0)
        return jnp.mean(g * (R[:, None] - optimal_baseline(g, R)[None, :]), axis=0)

    G = batched_grads(plug_in, params, batches)
    exact = np.asarray(jax.grad(lambda p: exact_J(policy.dist, p, env_params))(params)["theta"])
    z = (G.mean(0) - exact) / (G.std(0, ddof=1) / np.sqrt(M))
    assert np.max(np.abs(z)) > 6.0, z


def test_optimal_baseline_estimator_trains_from_the_cli_config(tmp_path):
    """estimator=optimal_baseline is a training estimator and improves the Bandit return: the uniform
    policy's exact J = 6.5, the best 8.5 (by hand from the reward table); the bound 7.5 is half way.
    The final return averages 4 seeds × 10 iterations × 16 episodes = 640 episodes with rewards in
    [2, 12] (std ≤ 5), so its standard error is ≤ 0.2 and a policy that stayed uniform would need
    a +5 SE fluke to pass."""
    from pgrun.runner.loop import run

    cfg = make_config("env=Bandit", "policy=softmax_linear", "estimator=optimal_baseline", "iterations=60",
                      "num_seeds=4", "episodes_per_iteration=16", "optimizer.lr=0.1", "progress=false")
    summary = run(cfg, str(tmp_path / "run"))
    assert summary["status"] == "completed"
    rewards = np.asarray(BANDIT_REWARDS, np.float64)  # [state, action], states equally likely
    j_uniform, j_best = rewards.mean(axis=1).mean(), rewards.max(axis=1).mean()
    assert (j_uniform, j_best) == (6.5, 8.5)
    assert summary["final_return_mean"] > (j_uniform + j_best) / 2, summary["final_return_mean"]
