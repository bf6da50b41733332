"""Hydra multirun: the basic launcher, submitit_local (2 jobs, real subprocesses) and pgrun's Ray
launcher on a local Ray instance (2 jobs as Ray tasks)."""

from __future__ import annotations

import json

import pytest
from scale_helpers import pgrun

SMALL = ["env=Bandit", "policy=softmax_linear", "num_seeds=2", "iterations=4", "episodes_per_iteration=4",
         "log_every=2", "progress=false"]


def _completed(sweep_dir, n):
    jobs = sorted(p for p in sweep_dir.iterdir() if p.is_dir() and p.name.isdigit())
    assert [p.name for p in jobs] == [str(i) for i in range(n)]
    for job in jobs:
        assert json.load(open(job / "summary.json"))["status"] == "completed"
        assert (job / ".hydra" / "config.yaml").exists() and (job / "metrics.csv").exists()
    return jobs


def test_basic_launcher(tmp_path):
    p = pgrun("-m", "seed=0,1", *SMALL, f"hydra.sweep.dir={tmp_path}")
    assert p.returncode == 0, p.stderr
    jobs = _completed(tmp_path, 2)
    assert [json.load(open(j / "summary.json"))["seeds"] for j in jobs] == [[0, 1], [1, 2]]


def test_submitit_local_runs_two_jobs(tmp_path):
    p = pgrun("-m", "hydra/launcher=submitit_local", "optimizer.lr=0.05,0.2", *SMALL, f"hydra.sweep.dir={tmp_path}")
    assert p.returncode == 0, p.stderr
    jobs = _completed(tmp_path, 2)
    assert [json.load(open(j / "summary.json"))["config"]["optimizer"]["lr"] for j in jobs] == [0.05, 0.2]
    assert (tmp_path / ".submitit").is_dir()  # the jobs really went through submitit


@pytest.mark.slow  # a local Ray instance takes ~17 s to start; the missing-Ray error stays in the fast suite
def test_ray_launcher_runs_two_jobs_on_a_local_ray_instance(tmp_path):
    """hydra/launcher=ray with address=null starts a local Ray instance; each job is a Ray task,
    run in a Ray worker process (not the launching one)."""
    p = pgrun("-m", "hydra/launcher=ray", "++hydra.launcher.init.num_cpus=2",
              "++hydra.launcher.init.include_dashboard=false", "optimizer.lr=0.05,0.2", *SMALL,
              f"hydra.sweep.dir={tmp_path}", timeout=400)
    assert p.returncode == 0, p.stderr[-3000:]
    jobs = _completed(tmp_path, 2)
    assert [json.load(open(j / "summary.json"))["config"]["optimizer"]["lr"] for j in jobs] == [0.05, 0.2]
    assert "Started a local Ray instance" in p.stderr  # the jobs really went through Ray
