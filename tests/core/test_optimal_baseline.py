"""The leave-one-out optimal baseline b*_k = Σ g²R / Σ g² (notes 03, Appendix C)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import make_config
from jax.flatten_util import ravel_pytree

from pgrun.core.exact import BANDIT_REWARDS
from pgrun.core.optimal_baseline import (
    episode_returns,
    episode_scores,
    loo_optimal_baseline,
    optimal_baseline,
    optimal_baseline_grad,
    optimal_baseline_grad_flat,
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


def test_unbiased_and_lower_variance_on_bandit(bandit):
    """Monte-Carlo mean over M = 2000 batches of N = 4 episodes vs the exact ∇J, and variance vs REINFORCE.

    Tolerance: every component within 4.5 standard errors (Bonferroni over 6 components:
    a false alarm has probability < 6 · 7e-6); the seed is fixed, so the test is deterministic.
    """
    env, env_params, policy, params, batches = bandit
    G_opt = batched_grads(make_grad_fn("optimal_baseline", policy, 1.0), params, batches)
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
    """estimator=optimal_baseline is a training estimator: its update is -optimal_baseline_grad, and
    it improves the Bandit return past the midpoint between the uniform policy's J and the best J,
    both by hand from the reward table (½·(12+7)/2 + ½·(2+5)/2 = 6.5 and ½·12 + ½·5 = 8.5). The
    final return is a mean over 4 seeds × 10 iterations × 16 episodes = 640 episodes of rewards in
    [2, 12] (sd ≤ 5, so standard error ≤ 0.2): passing the midpoint is learning, not noise."""
    from pgrun.runner.loop import run

    cfg = make_config("env=Bandit", "policy=softmax_linear", "estimator=optimal_baseline", "iterations=60",
                      "num_seeds=4", "episodes_per_iteration=16", "optimizer.lr=0.1", "progress=false")
    summary = run(cfg, str(tmp_path / "run"))
    assert summary["status"] == "completed"
    rewards = np.asarray(BANDIT_REWARDS, np.float64)  # [state, action], states equally likely
    j_uniform, j_best = rewards.mean(axis=1).mean(), rewards.max(axis=1).mean()
    assert (j_uniform, j_best) == (6.5, 8.5)
    assert summary["final_return_mean"] > (j_uniform + j_best) / 2, summary["final_return_mean"]
