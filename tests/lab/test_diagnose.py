"""Gradient diagnostics: statistics against numpy on hand-built samples; end to end on the Bandit."""

import csv
import json
import os

import numpy as np
import pytest
from helpers import make_config

from pgrun.lab.diagnose import diagnose, initial_params, param_groups, split_overrides
from pgrun.lab.gradstats import _resampled, bias_test, bootstrap_counts, estimator_stats, variance_ratio


@pytest.fixture
def hand():
    G = np.array([[1.0, 2.0, 0.0],
                  [3.0, -1.0, 0.0],
                  [2.0, 0.5, 0.0],
                  [0.0, 1.5, 0.0]])  # M = 4 batches, P = 3 (last component never moves)
    ref = np.array([1.0, 1.0, 0.0])
    return G, ref


def test_stats_match_numpy(hand):
    G, ref = hand
    groups = {"a": np.array([0, 1]), "b": np.array([2])}
    s = estimator_stats(G, ref, None, groups, counts=None)
    mean = np.array([1.5, 0.75, 0.0])
    np.testing.assert_allclose(s["mean"], mean)
    var = np.array([np.var([1, 3, 2, 0], ddof=1), np.var([2, -1, 0.5, 1.5], ddof=1), 0.0])
    assert s["total_variance"] == pytest.approx(var.sum())
    assert s["total_variance"] == pytest.approx(np.trace(np.cov(G.T)))
    assert s["group_variance"] == {"a": pytest.approx(var[:2].sum()), "b": 0.0}
    assert s["cosine_to_ref"] == pytest.approx(mean @ ref / (np.linalg.norm(mean) * np.linalg.norm(ref)))
    d = mean - ref
    assert s["relative_error"] == pytest.approx(np.linalg.norm(d) / np.linalg.norm(ref))
    assert s["bias"]["norm"] == pytest.approx(np.linalg.norm(d))
    assert s["bias"]["noise_floor"] == pytest.approx(np.sqrt(var.sum() / 4))
    z = d[:2] / np.sqrt(var[:2] / 4)
    assert s["bias"]["max_abs_z"] == pytest.approx(np.max(np.abs(z)))
    assert s["bias"]["components_tested"] == 2  # the zero-variance component agrees exactly
    assert s["bias"]["fraction_ci_covering_zero"] == pytest.approx(np.mean(np.abs(z) <= 1.959964))


def test_bootstrap_gram_trick_matches_direct_resampling(hand):
    G, ref = hand
    counts = bootstrap_counts(4, 50, seed=1)
    m = G.mean(0)
    tv, bias_sq = _resampled(G - m, m - ref, counts)
    for b in range(50):
        rows = np.repeat(np.arange(4), counts[b].astype(int))
        Gb = G[rows]
        assert tv[b] == pytest.approx(Gb.var(0, ddof=1).sum(), abs=1e-9)
        assert bias_sq[b] == pytest.approx(np.sum((Gb.mean(0) - ref) ** 2), abs=1e-9)
    r = variance_ratio(G * 2.0, G, counts)
    assert r["ratio"] == pytest.approx(4.0) and r["ci95"] == pytest.approx([4.0, 4.0])



def test_debiased_norm_and_its_interval_by_hand(hand):
    """D = ‖m - r‖² - tr Cov / M with V̂ = Cov / M formed densely (P x P), and the interval's ends are
    the roots of (D - u)² = z² (4 u v + 2 tr V̂²), v = dᵀV̂d / ‖d‖²."""
    G, ref = hand
    M = len(G)
    d = G.mean(0) - ref
    for ref_se in (None, np.array([0.1, 0.3, 0.2])):  # exact or Monte-Carlo reference: V += diag s_r²
        V = np.cov(G.T) / M + (0.0 if ref_se is None else np.diag(ref_se**2))
        D = d @ d - np.trace(V)
        v, t2, z = d @ V @ d / (d @ d), np.trace(V @ V), 1.959963984540054
        b = estimator_stats(G, ref, ref_se)["bias"]
        assert b["debiased_norm"] == pytest.approx(np.sqrt(max(D, 0.0)))
        roots = np.roots([1.0, -2.0 * (D + 2 * z * z * v), D * D - 2 * z * z * t2])
        lo = 0.0 if D <= 0 else max(roots.min(), 0.0)
        assert b["debiased_norm_ci95"] == pytest.approx([np.sqrt(lo), np.sqrt(roots.max())])


@pytest.mark.parametrize("beta_over_floor", [0.0, 1.0, 3.0, 10.0])
def test_debiased_norm_interval_covers_the_true_norm(beta_over_floor):
    """Gaussian gradient samples with a known mean μ (M = 100 batches, P = 6 components of unequal
    spread), r = 0, true bias norm β = ‖μ‖ at 0, 1, 3 and 10 noise floors √(tr Cov / M). Over R = 400
    repetitions the 95% interval must cover β at the nominal rate: at least 0.95 - 3σ_R - 0.01 = 0.907
    (σ_R = √(0.95·0.05/R) = 0.011; 0.01 allows for the normal approximation of ‖m‖², measured
    0.93-0.99 over P = 2..40), at most 0.995 (not a uselessly wide interval), and it always contains its
    own point estimate. Fixed seed: deterministic."""
    M, P, R = 100, 6, 400
    scales = np.array([1.0, 1.0, 2.0, 0.5, 3.0, 1.0])
    mu = np.zeros(P)
    mu[0] = beta_over_floor * np.sqrt(np.sum(scales**2) / M)
    rng = np.random.default_rng(12)
    covered = 0
    for _ in range(R):
        b = estimator_stats(mu + rng.normal(size=(M, P)) * scales, np.zeros(P))["bias"]
        lo, hi = b["debiased_norm_ci95"]
        assert lo <= b["debiased_norm"] <= hi
        covered += lo <= np.linalg.norm(mu) <= hi
    assert 0.907 <= covered / R <= 0.995, covered / R


def test_bias_test_flags_zero_variance_mismatch_and_reference_error():
    G = np.ones((10, 2))
    assert not bias_test(G, np.array([1.0, 1.5]))["unbiased_at_alpha"]  # no noise, wrong mean
    assert bias_test(G, np.array([1.0, 1.0]))["unbiased_at_alpha"]
    rng = np.random.default_rng(0)
    G = rng.normal(size=(400, 5)) + 0.3
    assert not bias_test(G, np.zeros(5))["unbiased_at_alpha"]
    # the same offset is within the error of a very noisy Monte-Carlo reference
    assert bias_test(G, np.zeros(5), ref_se=np.full(5, 1.0))["unbiased_at_alpha"]


def test_param_groups_layers():
    import jax

    from pgrun.core.policies import mlp
    from pgrun.envs import make_env
    env = make_env("ParticleContinuous")
    pol = mlp(2, env.action_space, [8, 8], "tanh")
    params = pol.init(jax.random.PRNGKey(0))
    groups = param_groups(params)
    assert list(groups) == ["log_std", "net/params/Dense_0", "net/params/Dense_1", "net/params/Dense_2"]
    assert [len(v) for v in groups.values()] == [2, 2 * 8 + 8, 8 * 8 + 8, 8 * 2 + 2]
    assert np.array_equal(np.sort(np.concatenate(list(groups.values()))), np.arange(2 + 24 + 72 + 18))


def test_split_overrides_typed():
    rest, d = split_overrides(["env=Bandit", "diagnose.batches=32", "+diagnose.estimators=[reinforce,baseline]"])
    assert rest == ["env=Bandit"] and d.batches == 32 and d.estimators == ["reinforce", "baseline"]
    with pytest.raises(SystemExit, match="valid diagnose keys"):
        split_overrides(["diagnose.bogus=1"])
    with pytest.raises(SystemExit):
        split_overrides(["diagnose.batches=many"])


@pytest.fixture(scope="module")
def bandit_run(tmp_path_factory):
    cfg = make_config("env=Bandit", "policy=softmax_linear", "episodes_per_iteration=8")
    params = initial_params(cfg)
    out = tmp_path_factory.mktemp("diag")
    res = diagnose(cfg, params, str(out), ["reinforce", "baseline", "value_baseline", "optimal_baseline"],
                   batches=128, critic="exact", bootstrap=200)
    return cfg, params, out, res


def test_diagnose_bandit_end_to_end(bandit_run):
    cfg, params, out, res = bandit_run
    for f in ("gradients.json", "gradients.csv", "gradients.png"):
        assert os.path.getsize(out / f) > 0
    saved = json.load(open(out / "gradients.json"))
    assert saved["reference"]["kind"] == "exact" and saved["reference"]["J"] == pytest.approx(6.5)
    rows = list(csv.DictReader(open(out / "gradients.csv")))
    assert [r["estimator"] for r in rows] == ["reinforce", "baseline", "value_baseline", "optimal_baseline"]
    est = res["estimators"]
    for name, s in est.items():
        assert s["bias"]["unbiased_at_alpha"], (name, s["bias"])
        assert s["cosine_to_ref"] > 0.9
        # the stats of the saved samples are the numpy ones
        G = res["_samples"][name]
        assert G.shape == (128, 6)
        assert s["total_variance"] == pytest.approx(G.var(0, ddof=1).sum())
        np.testing.assert_allclose(s["mean"], G.mean(0))
    # the state baseline V(s) of notes 03 reduces variance a lot against raw returns
    assert res["variance_ratios"]["value_baseline"]["reinforce"]["ci95"][1] < 0.5


def test_bias_shows_on_diagnosed_samples(bandit_run):
    """A constant offset on real diagnosed samples is flagged; the samples themselves are not.
    (An injected bias through the whole pipeline is tested in test_report.py.)"""
    _, _, _, res = bandit_run
    G = res["_samples"]["baseline"]
    ref = np.asarray(res["reference"]["gradient"])
    assert estimator_stats(G, ref)["bias"]["unbiased_at_alpha"]
    shifted = estimator_stats(G + 0.3, ref)["bias"]
    assert not shifted["unbiased_at_alpha"] and shifted["debiased_norm"] > 0.5


def test_python_m_pgrun_diagnose_still_runs_the_lab():
    """`python -m pgrun.diagnose` (the documented spelling before the lab moved) is pgrun-diagnose."""
    import subprocess
    import sys

    p = subprocess.run([sys.executable, "-m", "pgrun.diagnose", "diagnose.bogus=1"], capture_output=True, text=True,
                       timeout=120)
    assert p.returncode != 0 and "pgrun.diagnose: bad diagnose override" in p.stderr
    assert "valid diagnose keys: estimators, batches" in p.stderr
