"""Sequence- vs token-level ratios against the exact ∇J (`pgrun.lab.ratio_bias`), on copy with
P = 1, V = 2 (A = 3 tokens with EOS), partial credit 0.5.

Hand checks. H = 1: every completion is one token, so Πρ_t = ρ_0 = (Πρ_t)^{1/|o|}: the three
estimators coincide and, being trajectory IS, are unbiased; the ESS/n of w = π_θ(a|x)/π_old(a|x)
is 1 / ((1/M) Σ_x Σ_a π_θ(a|x)² / π_old(a|x)), computed here from the two tables in numpy.
H = 2: the only completions with R > 0 have |o| = 2 (an empty completion, EOS first, scores 0),
so on-policy GSPO's 1/|o| halves the gradient exactly: relative bias 0.5, cosine 1.
"""

from __future__ import annotations

import numpy as np
import pytest

from pgrun.lab.ratio_bias import ratio_bias


def _softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def test_h1_all_ratios_coincide_unbiased_and_ess_by_hand():
    r = ratio_bias(1)
    assert r["J"] != pytest.approx(r["J_old"], abs=1e-3)  # θ ≠ θ_old
    for k in ("sequence", "token", "gspo"):
        assert r["bias"][k] < 1e-5 and r["on_policy_bias"][k] < 1e-5
    p_old, p = _softmax(r["theta_old"]["theta"]), _softmax(r["theta"]["theta"])  # [2 prompts, 3]
    ess = 1.0 / np.mean(np.sum(p ** 2 / p_old, axis=1))
    assert ess < 0.95
    for k in ("sequence", "gspo", "token_min"):
        assert r["ess"][k] == pytest.approx(ess, rel=1e-4)


@pytest.mark.slow
def test_h2_token_ratio_biased_off_policy_sequence_ratio_unbiased_gspo_halves():
    r = ratio_bias(2)
    assert r["bias"]["sequence"] < 1e-5
    assert r["bias"]["token"] > 0.05 and r["on_policy_bias"]["token"] < 1e-5
    assert r["on_policy_bias"]["gspo"] == pytest.approx(0.5, abs=1e-5)
    assert r["ess"]["sequence"] < r["ess"]["token_min"] < 1.0
