"""pgrun-tune: the IQM score, the search-space syntax and its errors, and a study shared by two
worker processes through one journal file."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import optuna  # the `tune` extra, which `.[test]` installs: these tests do not skip without it
import pytest
from helpers import ROOT

from pgrun.tune import Param, TuneError, fmt, iqm, parse_args, parse_param, trial_config

TINY = ["env=CartPole", "policy=softmax_linear", "iterations=2", "log_every=1", "num_seeds=2",
        "episodes_per_iteration=2", "env.max_episode_steps=30", "progress=false"]


@pytest.mark.parametrize("finals, expected", [
    ([-50, 1, 2, 3, 4, 5, 6, 100], (2 + 3 + 4 + 5) / 4),  # n=8: drop the 2 lowest and the 2 highest
    ([0, 10, 1, 2, 3], (1 + 2 + 3) / 3),                  # n=5: floor(5/4) = 1 from each end
    ([4, 1, 3, 2], (2 + 3) / 2),                          # n=4: 1 from each end
    ([5, 7], 6.0),                                        # n<4: the plain mean
    ([9.0], 9.0),
])
def test_iqm_is_the_mean_of_the_middle_half(finals, expected):
    assert iqm(finals) == pytest.approx(expected)
    assert iqm(np.asarray(finals)[::-1]) == pytest.approx(expected)  # order does not matter


def test_distributions_are_read():
    assert parse_param("optimizer.lr", "log(1e-4,1e-1)") == Param("optimizer.lr", "log", 1e-4, 0.1)
    assert parse_param("gamma", "float(0.9, 0.999)") == Param("gamma", "float", 0.9, 0.999)
    assert parse_param("episodes_per_iteration", "int(4,32)") == Param("episodes_per_iteration", "int", 4, 32)
    assert parse_param("gamma", "[0.95,0.99]").choices == (0.95, 0.99)
    assert parse_param("policy.hidden", "choice([32],[64,64])").choices == ([32], [64, 64])
    assert parse_param("estimator", "[reinforce,ppo]").choices == ("reinforce", "ppo")


def test_suggested_values_reach_the_config():
    opts = parse_args([*TINY, "tune.params.optimizer.lr=log(1e-6,1e-1)", "tune.dir=unused"])
    config, searched = trial_config(opts, {"optimizer.lr": 1e-05, "policy.hidden": [64, 64], "gamma": 0.95,
                                           "estimator": "reinforce"})
    assert searched == ["optimizer.lr=1e-05", "policy.hidden=[64,64]", "gamma=0.95", "estimator=reinforce"]
    assert (config.optimizer.lr, list(config.policy.hidden), config.gamma) == (1e-05, [64, 64], 0.95)
    assert config.estimator.name == "reinforce" and config.iterations == 2
    assert fmt(True) == "true" and fmt(None) == "null" and fmt(3) == "3"


@pytest.mark.parametrize("arg, words", [
    ("tune.params.optimizer.lrr=log(1e-4,1e-1)", ["optimizer.lrr", "Did you mean optimizer.lr?"]),
    ("tune.params.gamma=uniform(0.9,0.99)", ["uniform", "float(lo,hi)", "log(lo,hi)", "choice"]),
    ("tune.params.gamma=float(0.99,0.9)", ["lo < hi"]),
    ("tune.params.optimizer.lr=log(0,1e-1)", ["lo > 0"]),
    ("tune.params.gamma=float(a,b)", ["two numbers"]),
    ("tune.params.estimator=[reinforce,reinforc]", ["reinforc", "valid choices", "reward_to_go"]),
    ("tune.params.estimator=float(0,1)", ["config group", "reinforce"]),
    ("tune.params.sweep.gamma=[0.9,0.99]", ["cannot be searched"]),
    ("tune.trial=3", ["tune.trial", "tune.trials"]),
    ("tune.trials=0", ["tune.trials", ">= 1"]),
])
def test_bad_arguments_name_the_argument_and_the_choices(arg, words):
    with pytest.raises(TuneError) as e:
        parse_args([arg] + ([] if arg.startswith("tune.params") else ["tune.params.gamma=[0.9,0.99]"]))
    for w in words:
        assert w in str(e.value), (w, str(e.value))


def _tune(*args, cwd, env=None, **kw):
    e = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    e.pop("HYDRA_FULL_ERROR", None)
    return subprocess.Popen([sys.executable, "-m", "pgrun.tune", *args], cwd=cwd, env=e, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)


@pytest.mark.parametrize("arg, words", [
    ("tune.params.optimizer.lrr=log(1e-4,1e-1)", ["optimizer.lrr", "Did you mean optimizer.lr?"]),
    ("tune.params.gamma=normal(0,1)", ["normal", "float(lo,hi)", "choice"]),
    ("tune.params.gamma=float(0.9,1.5)", ["gamma", "1.5", "[0, 1]"]),  # the config check, before any trial
])
def test_bad_input_exits_2_with_one_paragraph(arg, words, tmp_path):
    out, err = (p := _tune(arg, *TINY, f"tune.dir={tmp_path / 'study'}", cwd=tmp_path)).communicate(timeout=120)
    assert p.returncode == 2, err
    assert "Traceback" not in err and err.startswith("pgrun-tune: config error: ") and err.count("\n") == 1, err
    for w in words:
        assert w in err, (w, err)
    assert not (tmp_path / "study").exists() and not (tmp_path / "outputs").exists()


def test_two_workers_share_one_study_on_a_journal_file(tmp_path):
    journal, study_dir = tmp_path / "study.journal", tmp_path / "study"
    args = ["tune.params.optimizer.lr=log(1e-3,1e-1)", "tune.params.gamma=[0.95,0.99]", "tune.trials=2",
            f"tune.storage={journal}", f"tune.dir={study_dir}", "tune.study=two", *TINY]
    env = {"PGRUN_CACHE_DIR": str(tmp_path / "cache")}
    workers = [_tune(*args, cwd=tmp_path, env=env) for _ in range(2)]
    outs = [w.communicate(timeout=600) for w in workers]
    for w, (out, err) in zip(workers, outs):
        assert w.returncode == 0, err[-3000:]
        assert "pgrun-tune: best of" in out

    study = optuna.load_study(study_name="two", storage=optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(journal))))
    trials = study.trials
    assert len(trials) == 4 and all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    by_worker = {t.user_attrs["worker"] for t in trials}
    assert len(by_worker) == 2  # both processes ran trials in the one study ...
    assert sorted([t.user_attrs["worker"] for t in trials].count(w) for w in by_worker) == [2, 2]  # 2 each
    for t in trials:  # ... each scored by the IQM of its own run's per-seed finals (2 seeds: their mean)
        summary = json.load(open(t.user_attrs["run_dir"] + "/summary.json"))
        finals = list(summary["final_return_per_seed"].values())
        assert len(finals) == 2 and t.value == pytest.approx(np.mean(finals))
        assert summary["config"]["optimizer"]["lr"] == pytest.approx(t.params["optimizer.lr"])
        assert summary["config"]["gamma"] == t.params["gamma"] and summary["status"] == "completed"
    assert sorted(os.listdir(study_dir)) == ["best.json", *sorted(f"trial_{t.number}" for t in trials)]
    best = json.load(open(study_dir / "best.json"))
    assert best["trials_complete"] == 4 and best["best_value"] == max(t.value for t in trials)
    assert best["best_params"] == study.best_trial.params
