"""The group estimators against the exact ∇J of a tiny Tokens instance (tabular prefix policy).

Instance: task copy, P = 1, V = 2, H = 2 (A = 3 tokens with EOS), partial credit 0.5, γ = 1;
J and ∇J by enumeration of the 2 prompts × 9 strings (`pgrun.core.sequences`). θ is a random
table (18 logits), so every state is visited and the gradient has no special structure.
Each estimator's gradient is drawn on K independent batches of 8 episodes (2 prompts × G = 4)
at that θ, through the same `prepare` and `loss` as training (`pgrun.train.group`).

Statistics (stated tolerances): m_j, s_j the mean and standard error of coordinate j over the
K draws. "Unbiased for c·∇J": |m_j - c ∂_jJ| ≤ 4.5 s_j + 1e-6 for all 18 j (family-wise false
alarm ≈ 18 · 7e-6). The fitted scale ĉ = Σ w m g / Σ w g² (w = 1/s², g = ∇J), its standard
error 1/sqrt(Σ w g²); the misfit χ² = Σ ((m - ĉ g)/s)² is ≈ 17 ± 6 for an estimator whose
mean is a multiple of ∇J (coordinates of a softmax row are correlated, so it spreads wider; 37
was seen); "the direction is biased" means χ² > 200 (GRPO's variants gave 340 to 2900 at K = 5000).
Runtime is mostly compilation: ~15 s per estimator on a loaded 2-core CPU, so only RLOO and the
group mean run in the fast suite.
"""

from __future__ import annotations

import numpy as np
import pytest

from pgrun.lab.group_gradients import fit_to_gradient, group_draws

K = 8000


def _draws(*overrides: str):
    """(K gradient draws [K, 18], exact ∇J [18], exact J, K batch mean returns)."""
    d = group_draws(list(overrides), K)
    return d["draws"], d["grad"], d["J"], d["returns"]


def _fit(g, grad):
    f = fit_to_gradient(g, grad)
    m, s = g.mean(0), g.std(0, ddof=1) / np.sqrt(len(g))
    return m, s, f["scale"], f["scale_se"], f["chi2"]


@pytest.fixture(scope="module")
def rloo():
    return _draws("estimator=rloo")


def test_enumeration_matches_the_sampler(rloo):
    _, _, J, ret = rloo
    assert abs(ret.mean() - J) < 4.5 * ret.std() / np.sqrt(len(ret))


def test_rloo_is_unbiased(rloo):
    g, grad, _, _ = rloo
    m, s, c, se_c, chi2 = _fit(g, grad)
    assert np.all(np.abs(m - grad) <= 4.5 * s + 1e-6), (m, grad, s)
    assert abs(c - 1.0) < 4.5 * se_c


def test_group_mean_scales_the_gradient_by_g_minus_1_over_g():
    g, grad, _, _ = _draws("estimator=rloo", "estimator.baseline=group_mean")
    m, s, c, se_c, chi2 = _fit(g, grad)
    assert abs(c - 0.75) < 4.5 * se_c and abs(c - 1.0) > 10 * se_c, (c, se_c)
    assert np.all(np.abs(m - 0.75 * grad) <= 4.5 * s + 1e-6)


@pytest.mark.slow
def test_dr_grpo_is_a_multiple_of_the_gradient():
    # group mean, no std, token sum / C (C = H = 2): E = (G-1)/G · ∇J / C
    g, grad, _, _ = _draws("estimator=dr_grpo", "estimator.correction=none")
    m, s, c, se_c, chi2 = _fit(g, grad)
    assert np.all(np.abs(m - 0.375 * grad) <= 4.5 * s + 1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("change", [["estimator.adv_scale=none"], ["estimator.loss_agg=seq_sum"], []],
                         ids=["length_norm_only", "std_only", "grpo"])
def test_grpo_normalisations_bias_the_direction(change):
    g, grad, _, _ = _draws("estimator=grpo", "estimator.correction=none", *change)
    m, s, c, se_c, chi2 = _fit(g, grad)
    assert chi2 > 200, (chi2, c)
