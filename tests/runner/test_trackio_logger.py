"""logger.trackio=true (pgrun/runner/trackio_logger.py): a Trackio run in Trackio's local store
($TRACKIO_DIR) whose metrics are metrics.csv's seed means, whose config is the run's, which a
resume continues (same run, no step twice), with pgrun's stdout left to pgrun.

Run through the CLI in a subprocess: Trackio reads $TRACKIO_DIR once, at import. trackio is an
optional extra (`pgrun[trackio]`, in the test extra): these tests skip without it, except under
PGRUN_REQUIRE_OPTIONAL=1 (.ci/run)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from cli_helpers import TINY, run_cli
from helpers import optional_module
from scale_helpers import read_rows

optional_module("trackio")

READ = """import json, sys
from trackio.sqlite_storage import SQLiteStorage as S
project, name = sys.argv[1:]
print(json.dumps({"logs": S.get_logs(project, name), "config": S.get_run_config(project, name),
                  "runs": S.get_runs(project)}))"""


def _stored(store: str, project: str, name: str) -> dict:
    """What Trackio's own storage reads back for run `name`."""
    p = subprocess.run([sys.executable, "-c", READ, project, name], env={**os.environ, "TRACKIO_DIR": store},
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr[-2000:]
    return json.loads(p.stdout.splitlines()[-1])


ARGS = [*TINY, "logger.trackio=true", "logger.trackio_project=pgrun-test", "optimizer.schedule=constant"]


def _check_logs(got: dict, out: str, steps: list[int]) -> None:
    """Trackio's logged steps are `steps`, each with metrics.csv's seed mean / min / max of return_mean."""
    assert [r["step"] for r in got["logs"]] == steps
    rows = read_rows(os.path.join(out, "metrics.csv"))
    for r in got["logs"]:
        x = [float(np.float32(row["return_mean"])) for row in rows if row["iteration"] == str(r["step"])]
        assert len(x) == 2
        assert r["return_mean"] == pytest.approx(sum(x) / 2, rel=1e-6)
        assert (r["return_mean_min"], r["return_mean_max"]) == pytest.approx((min(x), max(x)), rel=1e-6)
        assert r["loss"] == pytest.approx(np.mean([float(np.float32(row["loss"])) for row in rows
                                                  if row["iteration"] == str(r["step"])]), rel=1e-5)


def test_trackio_run_holds_the_seed_means_and_the_config(tmp_path):
    store, out = str(tmp_path / "store"), str(tmp_path / "run")
    p = run_cli(*ARGS, "log_every=1", f"hydra.run.dir={out}", env={"TRACKIO_DIR": store})
    assert p.returncode == 0, p.stderr[-3000:]
    assert "Trackio" not in p.stdout and "* " not in p.stdout  # Trackio's messages go to stderr
    name = json.load(open(os.path.join(out, "loggers.json")))["trackio"]["name"]
    got = _stored(store, "pgrun-test", name)
    _check_logs(got, out, [1, 2])
    config = json.load(open(os.path.join(out, "summary.json")))["config"]
    assert {k: v for k, v in got["config"].items() if not k.startswith("_")} == config  # the run's config


@pytest.mark.slow
def test_resume_continues_the_trackio_run(tmp_path):
    store, out, env = str(tmp_path / "store"), str(tmp_path / "run"), {"TRACKIO_DIR": str(tmp_path / "store")}
    assert run_cli(*ARGS, f"hydra.run.dir={out}", env=env).returncode == 0
    name = json.load(open(os.path.join(out, "loggers.json")))["trackio"]["name"]
    p = run_cli(*ARGS, "iterations=4", f"resume={out}", f"hydra.run.dir={tmp_path / 'resume'}", env=env)
    assert p.returncode == 0, p.stderr[-3000:]
    got = _stored(store, "pgrun-test", name)
    assert got["runs"] == [name]  # the resume continued the run, not a second one
    _check_logs(got, out, [1, 2, 3, 4])
