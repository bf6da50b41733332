"""The training estimator estimator=optimal_baseline (b* from running sums over previous batches),
evaluated at a fixed θ on the Chain against the exact ∇J (`pgrun.core.exact` via `pgrun.lab.reference`):
unbiased, and lower variance than REINFORCE and the batch-mean baseline on the same batches."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from helpers import make_config

from pgrun.lab import gradients, reference
from pgrun.lab.diagnose import initial_params
from pgrun.lab.gradstats import bootstrap_counts, variance_ratio
from pgrun.train.build import build


def _chain(gamma: float, theta_scale: float, seed: int = 0):
    cfg = make_config("env=Chain", "policy=softmax_linear", "policy.features=env", f"gamma={gamma}")
    parts = build(cfg)
    params = initial_params(cfg, 0, parts)
    if theta_scale:
        params = jax.tree_util.tree_map(
            lambda x: x + theta_scale * jax.random.normal(jax.random.PRNGKey(seed), x.shape), params)
    return parts, params


def _sample(parts, params, key, m, n):
    return gradients.sample_batches(parts.env, parts.env_params, parts.policy, params, jax.random.split(key, m), n,
                                    parts.max_steps)


@pytest.mark.parametrize("name, gamma", [("optimal_baseline", 1.0), ("reinforce_optimal_baseline", 0.9)])
def test_running_optimal_baseline_is_unbiased_on_the_chain(name, gamma):
    """Mean of M = 2000 batch estimates (N = 4 episodes, λ = 0.5: the sums hold ≈ 4 batches, so the
    current batch weighs much in b*) vs the exact ∇J at a non-uniform θ. Reward-to-go weights are
    unbiased for γ = 1, total-return weights for any γ.

    Bound: given the past, each batch's estimate is unbiased, so the M rows are uncorrelated
    (martingale differences) and the mean's standard error is std/√M. Every component with
    non-zero variance must lie within 4.5 standard errors (Bonferroni over ≤ 36 components: a
    false alarm has probability < 36 · 6.8e-6 = 2.4e-4); components that never vary (parameters of
    the terminal states, never an observation) must equal the exact gradient, 0. The seed is fixed.
    """
    parts, params = _chain(gamma, 0.5)
    exact = np.asarray(reference.exact_grad(parts.env, parts.env_params, parts.policy, params, gamma,
                                            parts.max_steps), np.float64)
    M = 2000
    warm = _sample(parts, params, jax.random.PRNGKey(1), 8, 4)
    data = _sample(parts, params, jax.random.PRNGKey(2), M, 4)
    G = gradients.running_grads(name, parts.policy, params, warm, data, gamma, 0.5)
    se = G.std(0, ddof=1) / np.sqrt(M)
    varies = se > 0
    z = (G.mean(0)[varies] - exact[varies]) / se[varies]
    assert np.max(np.abs(z)) < 4.5, z
    np.testing.assert_allclose(exact[~varies], 0.0, atol=1e-6)
    np.testing.assert_allclose(G.mean(0)[~varies], 0.0, atol=1e-6)
    assert varies.sum() >= 20 and np.linalg.norm(exact) > 0.1  # a real test: most components move


@pytest.mark.slow
def test_running_optimal_baseline_has_lower_variance_than_reinforce_and_the_batch_mean_baseline():
    """Chain at θ = 0 (the lecture's uniform policy), N = 16 episodes per batch, the same M = 1024
    batches for every estimator (paired), b* sums with λ = 0.98 warmed up on 200 batches.

    Bound: the paired-bootstrap 95% CI of the tr Cov ratio must lie below 1 against both. Measured on
    other seeds with M = 4096: ratio 0.65 to reinforce and 0.875 to `baseline` (reward-to-go minus the
    batch-mean return), CI half-width ≈ 0.03 there, ≈ 0.06 at M = 1024, so the upper end sits ≈ 0.06
    below 1 against `baseline` (one more half-width of margin) and far below against reinforce.
    """
    parts, params = _chain(0.99, 0.0)
    M = 1024
    data = _sample(parts, params, jax.random.PRNGKey(11), M, 16)
    warm = _sample(parts, params, jax.random.PRNGKey(12), 200, 16)
    G_opt = gradients.running_grads("optimal_baseline", parts.policy, params, warm, data, 0.99, 0.98)
    G = {n: gradients.batched_grads(gradients.make_grad_fn(n, parts.policy, 0.99), params, data)
         for n in ("reinforce", "baseline")}
    counts = bootstrap_counts(M, 1000, seed=0)
    for n, G_other in G.items():
        r = variance_ratio(G_opt, G_other, counts)
        assert r["ci95"][1] < 1.0, (n, r)
