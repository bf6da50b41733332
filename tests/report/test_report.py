"""The lecture report: the quick must-hold sections pass, and broken inputs make it fail."""

import json

import jax.numpy as jnp
import pytest

from pgrun.lab import gradients
from pgrun.report import lecture_report as report
from pgrun.report.lecture_report import ReportFailed, lecture_report

# small sizes: the same claims, fewer batches; the Chain section with the two causality estimators
SMALL = {"chain_batches": 200, "bootstrap": 300, "chain_estimators": ("reinforce", "reward_to_go"),
         "is_episodes": 1024, "bc_batches": 100}


def test_quick_report_must_hold_sections(tmp_path):
    s = lecture_report(str(tmp_path), quick=True, sections=["causality", "off_policy", "bc"], sizes=SMALL)
    assert s["must_hold_failed"] == []
    md = (tmp_path / "report.md").read_text()
    assert "DOES NOT HOLD" not in md.split("## 2.")[1]
    assert "**HOLDS** (must hold): reward-to-go has lower gradient variance" in md
    assert "**HOLDS** (must hold): the variance of trajectory-level weights" in md
    assert "Not run (TODO)" not in md and "section 6b (`--sections off_policy_updates`)" in md
    saved = json.loads((tmp_path / "report.json").read_text())
    assert {sec["key"] for sec in saved["sections"]} == {"causality", "off_policy", "bc"}
    assert (tmp_path / "figures" / "is_weights.png").stat().st_size > 0


def _inject(monkeypatch, name, extra):
    real = gradients.make_grad_fn

    def patched(n, *a, **k):
        f = real(n, *a, **k)
        return (lambda p, b: f(p, b) + extra(b)) if n == name else f

    monkeypatch.setattr(gradients, "make_grad_fn", patched)


def test_biased_estimator_is_reported_and_fails(tmp_path, monkeypatch):
    _inject(monkeypatch, "reward_to_go", lambda b: 0.05)  # a constant bias on every component
    with pytest.raises(ReportFailed, match="reward_to_go is unbiased"):
        lecture_report(str(tmp_path), quick=True, sections=["causality"], sizes=SMALL)
    md = (tmp_path / "report.md").read_text()
    assert "**DOES NOT HOLD** (must hold): reward_to_go is unbiased" in md
    assert "**HOLDS** (must hold): reinforce is unbiased" in md


def test_noisier_reward_to_go_fails_the_variance_claim(tmp_path, monkeypatch):
    # zero-mean noise at θ = 0 (uniform over 3 actions: E[a] = 1): more variance, no bias
    _inject(monkeypatch, "reward_to_go", lambda b: 2.0 * (b.action[0, 0].astype(jnp.float32) - 1.0))
    with pytest.raises(ReportFailed, match="reward-to-go has lower gradient variance"):
        lecture_report(str(tmp_path), quick=True, sections=["causality"], sizes=SMALL)
    md = (tmp_path / "report.md").read_text()
    assert "**DOES NOT HOLD** (must hold): reward-to-go has lower gradient variance" in md
    assert "**HOLDS** (must hold): reward_to_go is unbiased" in md


def test_identical_policies_fail_the_importance_weight_claim(tmp_path, monkeypatch, capsys):
    # θ' = θ: every weight is 1, nothing grows with the horizon; the script exits with status 1
    monkeypatch.setitem(report.SIZES["quick"], "is_step", 0.0)
    with pytest.raises(SystemExit) as e:
        report.main(["--quick", "--out", str(tmp_path), "--sections", "off_policy"])
    assert e.value.code == 1
    assert "FAILED" in capsys.readouterr().err
    md = (tmp_path / "report.md").read_text()
    assert "**DOES NOT HOLD** (must hold): the variance of trajectory-level weights" in md


DISCOUNT = {"discount_batches": 256, "bootstrap": 100}


def test_discounting_section_holds_and_fails_when_gamma_t_is_ignored(tmp_path, monkeypatch):
    s = lecture_report(str(tmp_path / "ok"), quick=True, sections=["discounting"], sizes=DISCOUNT)
    assert s["must_hold_failed"] == [] and s["holds"] == 3
    md = (tmp_path / "ok" / "report.md").read_text()
    assert "**HOLDS** (must hold): at γ = 0.9, reward-to-go and the batch-mean baseline WITHOUT γ^t are biased" in md
    assert "exact bias ‖E ĝ − ∇J‖ = 0.0875 against |∇J| = 0.3734" in md
    real = gradients.make_grad_fn
    monkeypatch.setattr(gradients, "make_grad_fn", lambda *a, **k: real(*a, **dict(k, gamma_t=False)))
    with pytest.raises(ReportFailed, match="with estimator.gamma_t=true"):
        lecture_report(str(tmp_path / "bad"), quick=True, sections=["discounting"], sizes=DISCOUNT)
    md = (tmp_path / "bad" / "report.md").read_text()
    assert "**DOES NOT HOLD** (must hold): with estimator.gamma_t=true" in md
