"""A run says what happened (issue 13): one closing line with the final return and its CI, seeds
solved, compile and run seconds and the run directory, on stderr (also with progress=false), in
the run directory's cli.log, for every multirun job; Ctrl-C names the real directory to resume;
a sweep's progress bar and summary.json say which return they show."""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from cli_helpers import TINY, run_cli
from helpers import ROOT

LINE = re.compile(r"^pgrun: completed after (\d+) iterations: (.*)final return (\S+) \(95% CI (\S+) to (\S+) over "
                  r"(\d+) seeds, last 10 iterations\); (\d+)/(\d+) seeds solved \(>= ([\d.]+)\); compile ([\d.]+) s, "
                  r"run ([\d.]+) s; run dir (.+)$", re.M)


def _rows(run_dir):
    with open(os.path.join(run_dir, "metrics.csv"), newline="") as f:
        return list(csv.DictReader(f))


def _check_line(m, summary, run_dir):
    """The line's figures are summary.json's (rounded as printed) and its directory is the run's."""
    assert m.group(12) == str(run_dir)
    assert int(m.group(1)) == summary["iterations"]
    figures = summary["points"][summary["best_point"]] if "points" in summary else summary
    assert m.group(3) == f"{figures['final_return_mean']:.2f}"
    assert [m.group(4), m.group(5)] == [f"{v:.2f}" for v in figures["final_return_ci95"]]
    assert int(m.group(7)) == figures["seeds_solved_final"] and int(m.group(8)) == len(summary["seeds"])
    assert float(m.group(9)) == figures["solved_threshold"]
    assert m.group(10) == f"{summary['compile_s']:.1f}" and m.group(11) == f"{summary['run_s']:.1f}"


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("report") / "run"
    p = run_cli(f"hydra.run.dir={d}", *TINY)
    assert p.returncode == 0, p.stderr[-3000:]
    return d, p


def test_a_run_ends_with_one_line_even_without_progress_bar(tiny_run):
    d, p = tiny_run
    lines = [ln for ln in p.stderr.splitlines() if ln.startswith("pgrun:")]
    assert len(lines) == 1, p.stderr
    m = LINE.match(lines[0])
    assert m, lines[0]
    assert m.group(2) == ""  # not a sweep
    _check_line(m, json.load(open(d / "summary.json")), d)
    # hand-computed from metrics.csv: mean over seeds of each seed's mean return (2 iterations)
    rows = _rows(d)
    per_seed = [np.mean([float(r["return_mean"]) for r in rows if r["seed"] == s]) for s in ("0", "1")]
    assert m.group(3) == f"{np.mean(per_seed):.2f}"
    assert int(m.group(7)) == sum(v >= 8.5 for v in per_seed)  # the Bandit is solved at 8.5


def test_the_run_directory_log_holds_pgruns_lines(tiny_run):
    d, p = tiny_run
    log = (d / "cli.log").read_text()
    assert "[pgrun.cli][INFO]" in log
    closing = [ln for ln in p.stderr.splitlines() if ln.startswith("pgrun:")][0][len("pgrun: "):]
    assert log.rstrip().endswith(closing), log


def test_every_multirun_job_ends_with_its_line(tmp_path):
    p = run_cli("-m", "seed=0,5", *TINY, f"hydra.sweep.dir={tmp_path}")
    assert p.returncode == 0, p.stderr[-3000:]
    found = LINE.findall(p.stderr)
    assert [f[11] for f in found] == [str(tmp_path / "0"), str(tmp_path / "1")], p.stderr[-3000:]
    lines = [ln[len("pgrun: "):] for ln in p.stderr.splitlines() if LINE.match(ln)]
    for job, line in zip(("0", "1"), lines):
        assert line in (tmp_path / job / "cli.log").read_text()


def test_a_sweep_labels_the_mean_over_points_and_the_best_point(tmp_path):
    d = tmp_path / "run"
    p = run_cli(f"hydra.run.dir={d}", *TINY, "progress=true", "sweep.optimizer.lr=[0.01,0.5]")
    assert p.returncode == 0, p.stderr[-3000:]
    s = json.load(open(d / "summary.json"))
    assert s["final_return_of"] == "best_point"
    best = s["points"][s["best_point"]]
    assert s["final_return_mean"] == best["final_return_mean"]
    assert best["final_return_mean"] == max(q["final_return_mean"] for q in s["points"])
    # the bar's value is the mean over every point and seed of the last iteration, and says so
    bar = re.findall(r"ret\(mean of 2 points\)=([-\d.]+)", p.stderr)
    assert bar, p.stderr[-2000:]
    last = [float(r["return_mean"]) for r in _rows(d) if r["iteration"] == "2"]
    assert len(last) == 4 and bar[-1] == f"{np.mean(last):.1f}"
    assert "ret=" not in p.stderr
    m = LINE.search(p.stderr)
    assert m and m.group(2).startswith(f"best of 2 sweep points, point {s['best_point']} (optimizer.lr=")
    _check_line(m, s, d)


def test_ctrl_c_names_the_real_directory_to_resume(tmp_path):
    d = tmp_path / "run"
    e = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "pgrun.cli", f"hydra.run.dir={d}", *TINY, "iterations=10000000",
                             "checkpoint_every=0"], cwd=ROOT, env=e, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    t0 = time.time()
    while not ((d / "metrics.csv").exists() and sum(1 for _ in open(d / "metrics.csv")) > 8):
        assert proc.poll() is None and time.time() - t0 < 200, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert f"(continue with resume={d})" in err and "<run dir>" not in err, err
    assert f"metrics so far are in {d / 'metrics.csv'}" in err
    assert "interrupted after iteration" in (d / "cli.log").read_text()
