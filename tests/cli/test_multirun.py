"""Hydra multirun: the basic launcher, submitit_local (2 jobs, real subprocesses) and the Optuna example."""

from __future__ import annotations

import json

import pytest
import yaml
from helpers import optional_missing
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


@pytest.mark.skipif(optional_missing("hydra_plugins.hydra_submitit_launcher"),
                    reason="hydra-submitit-launcher not installed")
def test_submitit_local_runs_two_jobs(tmp_path):
    p = pgrun("-m", "hydra/launcher=submitit_local", "optimizer.lr=0.05,0.2", *SMALL, f"hydra.sweep.dir={tmp_path}")
    assert p.returncode == 0, p.stderr
    jobs = _completed(tmp_path, 2)
    assert [json.load(open(j / "summary.json"))["config"]["optimizer"]["lr"] for j in jobs] == [0.05, 0.2]
    assert (tmp_path / ".submitit").is_dir()  # the jobs really went through submitit


@pytest.mark.skipif(optional_missing("hydra_plugins.hydra_optuna_sweeper"),
                    reason="hydra-optuna-sweeper not installed")
def test_optuna_example_maximises_the_final_return(tmp_path):
    p = pgrun("-m", "+experiment=optuna_lr", "hydra.sweeper.n_trials=2", *SMALL, f"hydra.sweep.dir={tmp_path}")
    assert p.returncode == 0, p.stderr
    jobs = _completed(tmp_path, 2)
    best = yaml.safe_load(open(tmp_path / "optimization_results.yaml"))
    finals = [json.load(open(j / "summary.json"))["final_return_mean"] for j in jobs]
    assert best["best_value"] == pytest.approx(max(finals))
