"""Lecture report section 6b: several updates per batch, with and without a KL constraint.

The quick section runs and states its claims; a constrained variant that ignores its
constraint is reported as not holding (TRPO's bound is must-hold: the report fails).
"""

import json

import pytest

from pgrun.report.lecture_report import ReportFailed, lecture_report
from pgrun.train import offpolicy as train_offpolicy

SECTION = ["off_policy_updates"]
CLAIMS = ("without a constraint, π_θ' drifts further", "…and the importance weights degenerate",
          "the KL penalty (adaptive β, target δ = 0.01) keeps", "at K = 16 the KL constraint keeps π_θ' closer",
          "TRPO's hard constraint", "learn more from the same data (unconstrained",
          "learn more from the same data (kl_penalty", "the drift costs learning")


def _claims(md: str) -> dict:
    """claim text prefix -> the line stating it."""
    lines = md.split("## 6b.")[1].splitlines()
    return {c: next(line for line in lines if c in line) for c in CLAIMS}


@pytest.mark.slow  # cold-cache CI time; the non-slow suite keeps a test of the same path (trpo_ignoring_its_constraint)
def test_quick_updates_section(tmp_path):
    s = lecture_report(str(tmp_path), quick=True, sections=SECTION)
    assert s["must_hold_failed"] == []
    md = (tmp_path / "report.md").read_text()
    assert "Not run (TODO)" not in md
    lines = _claims(md)
    assert lines["TRPO's hard constraint"].startswith("- **HOLDS** (must hold)")
    assert lines["without a constraint, π_θ' drifts further"].startswith("- **HOLDS**:")  # ×100 or more in KL
    assert all(("(must hold)" in v) == (k == "TRPO's hard constraint") for k, v in lines.items())
    sec = json.loads((tmp_path / "report.json").read_text())["sections"][0]
    assert sec["key"] == "off_policy_updates" and len(sec["claims"]) == len(CLAIMS)
    got = {(v["variant"], v["epochs"]) for v in sec["data"]["variants"]}
    assert got == {("unconstrained", 1), ("unconstrained", 16), ("kl_penalty", 1), ("kl_penalty", 16), ("trpo", 1)}
    trpo = next(v for v in sec["data"]["variants"] if v["variant"] == "trpo")
    assert max(trpo["kl_max"]) <= 0.01 * (1 + 1e-4) and min(trpo["updates_mean"]) > 0
    assert (tmp_path / "figures" / "updates_per_batch.png").stat().st_size > 0


def test_trpo_ignoring_its_constraint_fails_the_report(tmp_path, monkeypatch):
    """A line search that checks KL against 25δ instead of δ: steps far past δ are accepted."""
    real = train_offpolicy.trpo_step

    def loose(surrogate, kl, params, max_kl, *a):
        return real(surrogate, kl, params, 25 * max_kl, *a)

    monkeypatch.setattr(train_offpolicy, "trpo_step", loose)
    with pytest.raises(ReportFailed, match="TRPO's hard constraint"):
        lecture_report(str(tmp_path), quick=True, sections=SECTION)
    md = (tmp_path / "report.md").read_text()
    assert _claims(md)["TRPO's hard constraint"].startswith("- **DOES NOT HOLD** (must hold)")


@pytest.mark.slow  # cold-cache CI time; the non-slow suite keeps a test of the same path
def test_kl_penalty_ignoring_its_constraint_is_reported(tmp_path, monkeypatch):
    """β dropped to 0 after the first iteration: kl_penalty becomes the unconstrained reuse.
    Its KL claims are measured ones: they are reported as not holding, the report does not fail."""
    monkeypatch.setattr(train_offpolicy, "adapt_kl_beta", lambda beta, kl, target: 0.0 * beta)
    s = lecture_report(str(tmp_path), quick=True, sections=SECTION)
    assert s["must_hold_failed"] == []
    lines = _claims((tmp_path / "report.md").read_text())
    assert lines["the KL penalty (adaptive β, target δ = 0.01) keeps"].startswith("- **DOES NOT HOLD**:")
    assert lines["at K = 16 the KL constraint keeps π_θ' closer"].startswith("- **DOES NOT HOLD**:")
    assert lines["TRPO's hard constraint"].startswith("- **HOLDS** (must hold)")
