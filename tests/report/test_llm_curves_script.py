"""scripts/llm_curves.py in a subprocess: two presets × 2 seeds × 3 iterations on reverse write one run
directory each, the plots of exact match and return, and print the final-score table per preset
(slow: two compiles of the transformer)."""

from __future__ import annotations

import csv
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.slow
def test_llm_curves_script_runs_presets_and_plots(tmp_path):
    out = tmp_path / "curves"
    p = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "llm_curves.py"), "--out", str(out),
                        "--seeds", "2", "--iterations", "3", "--presets", "rloo", "dr_grpo"],
                       capture_output=True, text=True, env={**os.environ, "PYTHONPATH": ROOT}, timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]
    for name in ("rloo", "dr_grpo"):
        rows = list(csv.DictReader(open(out / f"reverse_{name}" / "metrics.csv")))
        assert len(rows) == 6 and {r["seed"] for r in rows} == {"0", "1"} and "exact_match" in rows[0]
        assert f"| {name} | 2 |" in p.stdout.replace("estimator.name=", "")
    assert (out / "plots" / "exact_match" / "learning_curves.png").exists()
    assert (out / "plots" / "return_mean" / "learning_curves.png").exists()
    bad = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "llm_curves.py"), "--out", str(out),
                          "--presets", "ppo_typo"], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": ROOT})
    assert bad.returncode == 2 and "ppo_typo" in bad.stderr
