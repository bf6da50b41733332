"""The `pgrun` command line, end to end in subprocesses: outputs, re-running a saved config,
errors for bad input, --help and --cfg job."""

import csv
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from pgrun.cli import CONFIG_DIR

# the documented metrics.csv columns and summary.json figures (README / DESIGN), written out here
COLUMNS = ["iteration", "seed", "env_steps", "episodes", "return_mean", "return_std", "return_min", "return_max",
           "length_mean", "loss", "grad_norm", "entropy", "value_loss", "wall_s",
           # batch-reuse diagnostics (README, issue 4): empty for the on-policy estimators
           "is_weight_mean", "is_weight_max", "is_ess", "log_ratio_std", "kl_old_new", "clip_frac", "kl_beta",
           "updates", "trpo_ls_steps", "trpo_kl"]
SUMMARY_KEYS = ["final_return_mean", "final_return_ci95", "first_solved_iteration", "compile_s", "run_s",
                "env_steps_per_s", "versions"]
# config groups: every folder of configs/ that holds option YAMLs (Hydra's own settings aside)
GROUPS = sorted(p.name for p in Path(CONFIG_DIR).iterdir()
                if p.is_dir() and p.name != "hydra" and any(p.rglob("*.yaml")))

# small and fast: a linear policy, 3 iterations in chunks of 2 (the last chunk is half empty)
SMALL = ["env=CartPole", "policy=softmax_linear", "estimator=baseline", "iterations=3", "log_every=2", "num_seeds=2",
         "episodes_per_iteration=4", "env.max_episode_steps=30", "progress=false"]


@pytest.fixture(scope="module")
def cli_env(tmp_path_factory):
    """Environment for the subprocesses: one persistent XLA cache shared by all of them (and by
    both xdist workers, whose temp dirs share a parent), so identical programs compile once."""
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent
    env = dict(os.environ)
    env["PGRUN_CACHE_DIR"] = str(base / "pgrun-jax-cache")
    env.pop("HYDRA_FULL_ERROR", None)
    return env


def pgrun(args, env, timeout=300):
    return subprocess.run([sys.executable, "-m", "pgrun.cli", *args], capture_output=True, text=True,
                          env=env, timeout=timeout)


def read_csv(path):
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        return reader.fieldnames, list(reader)


def options(group):
    """Option names of a group: its YAML files, sub-folders included (e.g. lecture/variance)."""
    root = Path(CONFIG_DIR, group)
    return sorted(p.relative_to(root).with_suffix("").as_posix() for p in root.rglob("*.yaml"))


# ---------------------------------------------------------------------------------------------
# a small run and its outputs
# ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def small_run(tmp_path_factory, cli_env):
    d = tmp_path_factory.mktemp("cli") / "run1"
    p = pgrun([f"hydra.run.dir={d}", *SMALL], cli_env)
    assert p.returncode == 0, p.stderr[-3000:]
    return d


def test_small_run_writes_documented_metrics(small_run):
    header, rows = read_csv(small_run / "metrics.csv")
    assert header == COLUMNS
    # one row per (iteration, seed), ordered by iteration then seed
    assert [(int(r["iteration"]), int(r["seed"])) for r in rows] == [(i, s) for i in (1, 2, 3) for s in (0, 1)]
    for r in rows:
        assert r["value_loss"] == ""  # estimator=baseline has no critic
        assert int(r["episodes"]) == 4
        for c in ("return_mean", "return_std", "return_min", "return_max", "length_mean", "loss", "grad_norm",
                  "entropy", "wall_s"):
            assert math.isfinite(float(r[c])), (c, r)
        assert 1 <= float(r["return_min"]) <= float(r["return_mean"]) <= float(r["return_max"]) <= 30
    for s in ("0", "1"):  # env_steps is cumulative
        steps = [int(r["env_steps"]) for r in rows if r["seed"] == s]
        assert steps == sorted(steps) and steps[0] > 0


def test_small_run_writes_summary(small_run):
    s = json.loads((small_run / "summary.json").read_text())
    for k in SUMMARY_KEYS:
        assert k in s, k
    assert s["status"] == "completed"
    _, rows = read_csv(small_run / "metrics.csv")
    per_seed = [np.mean([float(r["return_mean"]) for r in rows if r["seed"] == sd][-10:]) for sd in ("0", "1")]
    assert s["final_return_mean"] == pytest.approx(np.mean(per_seed), rel=1e-6)
    lo, hi = s["final_return_ci95"]
    assert lo <= s["final_return_mean"] <= hi
    assert set(s["first_solved_iteration"]) == {"0", "1"}
    assert s["compile_s"] > 0 and s["run_s"] >= 0 and s["env_steps_per_s"] > 0
    assert s["versions"]["jax"] and s["versions"]["pgrun"]
    assert (small_run / ".hydra" / "config.yaml").is_file()


def test_rerunning_saved_config_reproduces_metrics(tmp_path, cli_env):
    """A run with non-default seed, γ and learning rate, re-run from its saved .hydra/config.yaml in a
    fresh process whose XLA cache is empty (so the program is compiled again, not read back): every
    metrics.csv column but the wall-clock one is identical, and the saved values were really used."""
    d1, d2 = tmp_path / "run1", tmp_path / "run2"
    custom = ["seed=7", "gamma=0.95", "optimizer.lr=0.02"]
    p = pgrun([f"hydra.run.dir={d1}", *SMALL, *custom], cli_env)
    assert p.returncode == 0, p.stderr[-3000:]
    fresh = dict(cli_env, PGRUN_CACHE_DIR=str(tmp_path / "empty-cache"))
    p = pgrun(["--config-path", str(d1 / ".hydra"), "--config-name", "config", f"hydra.run.dir={d2}"], fresh)
    assert p.returncode == 0, p.stderr[-3000:]
    assert any((tmp_path / "empty-cache").iterdir())  # the rerun compiled into the new cache
    h1, rows1 = read_csv(d1 / "metrics.csv")
    h2, rows2 = read_csv(d2 / "metrics.csv")
    assert h1 == h2 == COLUMNS
    strip = lambda rows: [{k: v for k, v in r.items() if k != "wall_s"} for r in rows]  # noqa: E731
    assert len(rows1) == 6 and strip(rows1) == strip(rows2)
    assert [r["seed"] for r in rows1] == ["7", "8"] * 3
    saved = yaml.safe_load((d2 / ".hydra" / "config.yaml").read_text())
    assert (saved["seed"], saved["gamma"], saved["optimizer"]["lr"]) == (7, 0.95, 0.02)


@pytest.mark.parametrize("estimator", ["value_baseline", "actor_critic"])
def test_critic_estimators_write_value_loss(estimator, tmp_path, cli_env):
    d = tmp_path / "run"
    p = pgrun([f"hydra.run.dir={d}", "env=Bandit", "policy=softmax_linear", f"estimator={estimator}",
               "estimator.critic_hidden=[8]", "iterations=2", "log_every=2", "num_seeds=2",
               "episodes_per_iteration=4", "progress=false"], cli_env)
    assert p.returncode == 0, p.stderr[-3000:]
    header, rows = read_csv(d / "metrics.csv")
    assert header == COLUMNS and len(rows) == 4
    for r in rows:
        assert r["value_loss"] != "" and math.isfinite(float(r["value_loss"])) and float(r["value_loss"]) > 0
    # summary: first iteration whose mean return reached the Bandit's threshold (8.5), per seed
    s = json.loads((d / "summary.json").read_text())
    assert s["solved_threshold"] == 8.5
    for sd in ("0", "1"):
        hits = [int(r["iteration"]) for r in rows if r["seed"] == sd and float(r["return_mean"]) >= 8.5]
        assert s["first_solved_iteration"][sd] == (hits[0] if hits else None)


def test_diverging_run_exits_with_message(tmp_path, cli_env):
    d = tmp_path / "run"
    p = pgrun([f"hydra.run.dir={d}", "env=ParticleContinuous", "policy=gaussian_linear", "estimator=reward_to_go",
               "optimizer=sgd", "optimizer.lr=1e30", "iterations=4", "log_every=4", "num_seeds=1",
               "episodes_per_iteration=2", "env.max_episode_steps=10", "progress=false"], cli_env)
    assert p.returncode == 3, p.stderr[-3000:]  # README: exits 3 naming the iteration and seed
    assert re.search(r"diverged.*at iteration \d+ \(seed 0\)", p.stderr), p.stderr[-3000:]
    assert "Traceback" not in p.stderr
    assert (d / "metrics.csv").is_file()


# ---------------------------------------------------------------------------------------------
# bad input: non-zero exit, a message naming the key and the valid choices, no traceback
# ---------------------------------------------------------------------------------------------

BAD = [
    pytest.param(["env=Foo"], ["env", "Foo"] + options("env"), id="unknown-env"),
    pytest.param(["policy=gaussian_linear", "env=CartPole"], ["gaussian_linear", "CartPole", "softmax_linear", "mlp"],
                 id="gaussian-on-discrete"),
    pytest.param(["policy=softmax_linear", "env=ParticleContinuous"],
                 ["softmax_linear", "ParticleContinuous", "gaussian_linear", "mlp"], id="softmax-on-continuous"),
    pytest.param(["optimizer.lr=-1"], ["optimizer.lr", "> 0"], id="negative-lr"),
    pytest.param(["gamma=1.5"], ["gamma", "[0, 1]"], id="gamma-above-1"),
    pytest.param(["num_seeds=0"], ["num_seeds", ">= 1"], id="zero-seeds"),
    pytest.param(["+env.params.foo=1"], ["foo", "gravity", "masscart", "force_mag"], id="unknown-env-param-append"),
    pytest.param(["env.params.foo=1"], ["foo", "gravity", "masscart", "force_mag"], id="unknown-env-param"),
    pytest.param(["estimator.baseline=bogus"], ["estimator.baseline", "bogus", "none", "batch_mean", "value"],
                 id="unknown-baseline"),
    pytest.param(["policy.features=env", "policy=softmax_linear", "env=CartPole"],
                 ["policy.features", "onehot_state"], id="env-features-missing"),
    pytest.param(["itrations=5"], ["itrations", "Did you mean iterations?", "num_seeds", "sweep"], id="misspelt-key"),
    pytest.param(["optimizer.lrr=0.1"], ["optimizer.lrr", "optimizer.lr?", "schedule"], id="misspelt-nested-key"),
]


@pytest.mark.parametrize("args,expected", BAD)
def test_bad_input_exits_nonzero_with_clear_message(args, expected, tmp_path, cli_env):
    p = pgrun([f"hydra.run.dir={tmp_path / 'run'}", "iterations=1", "num_seeds=1", "progress=false", *args], cli_env)
    assert p.returncode == 2
    err = p.stderr
    assert "Traceback" not in err, err[-3000:]
    for word in expected:
        assert word in err, (word, err[-3000:])
    assert not (tmp_path / "run" / "metrics.csv").exists()


def test_documented_env_params_override_is_accepted(cli_env):
    """README: `env.params.<name>=value` (e.g. env.params.gravity=12), without Hydra's `+`."""
    p = pgrun(["--cfg", "job", "env=CartPole", "env.params.gravity=12"], cli_env)
    assert p.returncode == 0, p.stderr[-2000:]
    assert yaml.safe_load(p.stdout)["env"]["params"] == {"gravity": 12}


# ---------------------------------------------------------------------------------------------
# --help and --cfg job
# ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def help_text(cli_env):
    script = Path(sys.executable).parent / "pgrun"
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "pgrun.cli"]  # the console script
    p = subprocess.run([*cmd, "--help"], capture_output=True, text=True, env=cli_env, timeout=120)
    assert p.returncode == 0, p.stderr[-2000:]
    return p.stdout


def _missing_from_help(group, text):
    return [o for o in options(group) if not re.search(rf"(?<![\w]){re.escape(o)}(?![\w])", text)]


def test_config_groups_found():
    assert {"env", "policy", "estimator", "optimizer"} <= set(GROUPS)


@pytest.mark.parametrize("group", GROUPS)
def test_help_lists_every_option_of_every_group(help_text, group):
    assert options(group), group
    assert f"{group}=" in help_text
    missing = _missing_from_help(group, help_text)
    assert not missing, f"{group}: {missing} not in --help"


def test_help_check_has_power(help_text):
    """The word-boundary search above does not accept a prefix of a longer name."""
    assert not _missing_from_help("policy", help_text)
    assert re.search(r"(?<![\w])Particle(?![\w])", "ParticleContinuous") is None


def test_cfg_job_prints_resolved_config(tmp_path, cli_env):
    d = tmp_path / "never"
    p = pgrun(["--cfg", "job", f"hydra.run.dir={d}", "env=Bandit", "policy=softmax_linear", "estimator=reinforce",
               "gamma=0.5", "optimizer.lr=0.3"], cli_env)
    assert p.returncode == 0, p.stderr[-2000:]
    cfg = yaml.safe_load(p.stdout)
    assert {"env", "policy", "estimator", "optimizer"} <= set(cfg)
    assert cfg["env"]["name"] == "Bandit" and cfg["policy"]["name"] == "softmax_linear"
    assert cfg["estimator"] == {**cfg["estimator"], "name": "reinforce", "weight": "total_return", "baseline": "none"}
    assert cfg["gamma"] == 0.5 and cfg["optimizer"]["lr"] == 0.3 and cfg["optimizer"]["name"] == "adam"
    for key in ("seed", "num_seeds", "iterations", "episodes_per_iteration", "log_every"):
        assert isinstance(cfg[key], int), key
    assert not (d / "metrics.csv").exists()  # printed, not run
