"""The report section "From the lecture to LLM fine-tuning" runs and its claims hold (slow: 7 compiles,
and 3 horizons of the exact ratio bias)."""

from __future__ import annotations

import json

import pytest

from pgrun.report.lecture_report import lecture_report


@pytest.mark.slow
def test_llm_section_claims_hold(tmp_path):
    s = lecture_report(str(tmp_path), quick=True, sections=["llm"], sizes={"llm_batches": 3000,
                       "llm_length_iterations": 6, "llm_length_seeds": 2})
    assert s["must_hold_failed"] == [] and s["claims"] == 10
    sec = json.loads((tmp_path / "report.json").read_text())["sections"][0]
    assert sec["key"] == "llm" and (tmp_path / "llm_estimators.png").exists()
    fits = sec["data"]["fits"]
    assert abs(fits["group mean (own reward included)"]["scale"] - 0.75) < 0.05
    assert fits["GRPO (group std, 1/|o|)"]["chi2"] > 100 > fits["Dr. GRPO (token sum / H)"]["chi2"]
    assert set(sec["data"]["variance_vs_horizon"]) == {"2", "3"}
    ratio = sec["data"]["ratio_vs_horizon"]
    assert set(ratio) == {"1", "2", "3"} and (tmp_path / "llm_ratio_bias.png").exists()
    assert all(r["bias"]["sequence"] < 1e-4 for r in ratio.values())
    assert ratio["2"]["bias"]["token"] > 0.02 and ratio["3"]["bias"]["gspo"] > 0.02
    length = sec["data"]["length"]  # GRPO and Dr. GRPO on reverse, H = 8: completion lengths from metrics.csv
    assert set(length) == {"GRPO", "Dr. GRPO"} and (tmp_path / "llm_length.png").exists()
    for d in length.values():
        assert len(d["length_incorrect"]) == 6 and all(1 <= v <= 8 for v in d["length_incorrect"])
