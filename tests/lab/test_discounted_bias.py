"""Reward-to-go and its baselines against the exact gradient of the DISCOUNTED objective (Chain,
softmax over the env's features, θ = 0, γ = 0.9): biased without γ^t, unbiased with
estimator.gamma_t (Thomas 2014; Nota & Thomas 2020).

Statistic of the fast test: the estimates G_m [M, P] projected on the exact bias direction
u = (E[plain reward-to-go] − ∇J) / ‖·‖ (both exact: `reference.expected_estimate`,
`reference.exact_grad`), z = mean_m u·(G_m − r) / (std / √M) for a reference r. One scalar,
a sum over many components, so its mean is close to normal where single rare-state components
are not. Unbiased for r ⇔ |z| < 3.5 (two-sided false alarm 5e-4); the plain form's exact bias
along u is 0.0875 (|∇J| = 0.373), about 7 standard errors at M = 256 batches × 16 episodes.
The slow test uses the lab's per-component Bonferroni bias test on 2048 batches.
"""

import jax
import numpy as np
import pytest
from helpers import make_config

from pgrun.lab import gradients, reference
from pgrun.lab.diagnose import run_from_overrides
from pgrun.lab.gradstats import bias_test
from pgrun.train.build import build

GAMMA = 0.9
CHAIN = ("env=Chain", "policy=softmax_linear", "policy.features=env", f"gamma={GAMMA}")


def _setup():
    parts = build(make_config(*CHAIN))
    params = parts.policy.init(jax.random.PRNGKey(0))  # θ = 0: the uniform policy
    args = (parts.env, parts.env_params, parts.policy, params, GAMMA, parts.max_steps)
    exact = reference.exact_grad(*args)
    plain_mean = reference.expected_estimate(*args, gamma_t=False)
    return parts, params, exact, plain_mean


def _grads(parts, params, M, seed, forms):
    data = gradients.sample_batches(parts.env, parts.env_params, parts.policy, params,
                                    jax.random.split(jax.random.PRNGKey(seed), M), 16, parts.max_steps)
    return {(name, gt): gradients.batched_grads(gradients.make_grad_fn(name, parts.policy, GAMMA, gamma_t=gt),
                                                params, data) for name, gt in forms}


def _z(G, ref, u):
    s = (G - ref) @ u
    return float(s.mean() / (s.std(ddof=1) / np.sqrt(len(s))))


def test_gamma_t_makes_reward_to_go_and_baseline_unbiased_for_the_discounted_objective(tmp_path):
    """Through pgrun-diagnose's command line (`estimator.gamma_t=true` applies to every listed
    estimator; total-return ones ignore it), on the same 256 batches for both forms."""
    parts, params, exact, plain_mean = _setup()
    bias = plain_mean - exact
    assert np.linalg.norm(bias) > 0.2 * np.linalg.norm(exact)  # the exact bias of the plain form is large
    u = bias / np.linalg.norm(bias)
    argv = [*CHAIN, "diagnose.batches=256", "diagnose.bootstrap=0", "diagnose.plot=false", "diagnose.seed=0"]
    argv.append("diagnose.baseline_warmup=16")  # optimal_baseline's running b* sums
    on = run_from_overrides([*argv, "estimator.gamma_t=true", f"diagnose.out_dir={tmp_path / 'on'}",
                             "diagnose.estimators=[reward_to_go,baseline,reinforce,optimal_baseline]"])
    off = run_from_overrides([*argv, "diagnose.estimators=[reward_to_go,reinforce,optimal_baseline]",
                              f"diagnose.out_dir={tmp_path}"])
    assert on["gamma_t"] is True and off["gamma_t"] is False
    np.testing.assert_array_equal(on["reference"]["gradient"], exact)
    for name in ("reward_to_go", "baseline", "optimal_baseline"):
        assert abs(_z(on["_samples"][name], exact, u)) < 3.5, name
    for name in ("reward_to_go", "optimal_baseline"):  # b* adds zero in expectation: same mean as G_t alone
        plain = off["_samples"][name]
        assert _z(plain, exact, u) > 4.0, name           # detected biased for ∇J ...
        assert abs(_z(plain, plain_mean, u)) < 3.5, name  # ... and consistent with its own exact mean
    np.testing.assert_array_equal(on["_samples"]["reinforce"], off["_samples"]["reinforce"])  # G(τ): no γ^t


@pytest.mark.slow
def test_lab_bias_test_on_chain_at_gamma_0_9():
    """pgrun-diagnose's test (per-component z, Bonferroni, α = 1e-3) on 2048 batches × 16 episodes."""
    parts, params, exact, _ = _setup()
    G = _grads(parts, params, 2048, 7, [(n, gt) for n in ("reward_to_go", "baseline", "batch_mean_time")
                                        for gt in (False, True)] + [("reinforce", False)])
    for name in ("reward_to_go", "baseline", "batch_mean_time"):
        assert bias_test(G[(name, True)], exact)["unbiased_at_alpha"], name
        assert bias_test(G[(name, False)], exact)["p_value_bonferroni"] < 1e-10, name
    assert bias_test(G[("reinforce", False)], exact)["unbiased_at_alpha"]
