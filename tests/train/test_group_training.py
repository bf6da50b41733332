"""The group estimators train on env=Tokens: metrics columns, every preset × sequence policy, learning."""

from __future__ import annotations

import csv
import subprocess
import sys

import numpy as np
import pytest

from pgrun.errors import ConfigError
from pgrun.runner.loop import run
from tests.helpers import make_config

TINY = ["env=Tokens", "env.task=copy", "env.prompt_len=2", "env.vocab=3", "env.horizon=3", "gamma=1.0",
        "episodes_per_iteration=16", "checkpoint_every=0", "progress=false"]


def _rows(run_dir):
    with open(run_dir / "metrics.csv", newline="") as f:
        reader = csv.DictReader(f)
        return reader.fieldnames, list(reader)


def test_a_tokens_run_writes_exact_match_and_lengths(tmp_path):
    cfg = make_config(*TINY, "policy=tabular_prefix", "estimator=grpo", "iterations=4", "log_every=2",
                      "num_seeds=2", "estimator.epochs=2", "estimator.minibatches=2")
    run(cfg, str(tmp_path / "r"))
    fields, rows = _rows(tmp_path / "r")
    assert fields[-3:] == ["exact_match", "length_correct", "length_incorrect"]
    assert len(rows) == 8
    for r in rows:
        assert 0.0 <= float(r["exact_match"]) <= 1.0 and 1.0 <= float(r["length_mean"]) <= 3.0
        assert np.isfinite(float(r["loss"])) and r["updates"] == "4" and r["clip_frac"] != ""


def test_a_bad_group_key_exits_2_with_one_paragraph():
    p = subprocess.run([sys.executable, "-m", "pgrun.cli", "env=Tokens", "estimator=rloo", "estimator.group_size=1"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 2
    assert "group_size >= 2" in p.stderr and "Traceback" not in p.stderr


@pytest.mark.slow
@pytest.mark.parametrize("policy", ["transformer", "gru"])
@pytest.mark.parametrize("estimator", ["rloo", "grpo", "dr_grpo", "dapo", "gspo", "reinforce_pp"])
def test_every_preset_runs_with_each_sequence_policy(tmp_path, estimator, policy):
    cfg = make_config(*TINY, f"policy={policy}", f"estimator={estimator}", "iterations=3", "log_every=3",
                      "num_seeds=2", "estimator.kl_coef=0.05")
    run(cfg, str(tmp_path / "r"))
    _, rows = _rows(tmp_path / "r")
    assert len(rows) == 6 and all(np.isfinite(float(r["loss"])) for r in rows)


@pytest.mark.slow
def test_rloo_with_a_transformer_learns_copy(tmp_path):
    """copy, P = 2, V = 3, H = 3: a uniform policy is exactly right with probability 1/64. Measured:
    4/4 seeds at 100% exact match by iteration ~125 of 32 episodes (compile ~60 s on a loaded 2-core CPU,
    training 7 s). Sampling through the KV cache (the default, explicit here; tests/core/test_kv_cache.py)."""
    cfg = make_config(*TINY, "policy=transformer", "policy.kv_cache=true", "estimator=rloo", "iterations=300",
                      "log_every=50", "num_seeds=4", "episodes_per_iteration=32")
    run(cfg, str(tmp_path / "r"))
    _, rows = _rows(tmp_path / "r")
    em = np.array([[float(r["exact_match"]) for r in rows if int(r["seed"]) == s] for s in range(4)])
    assert em[:, :5].mean() < 0.2                 # it starts near chance
    assert (em[:, -20:].mean(axis=1) >= 0.9).all(), em[:, -20:].mean(axis=1)


def test_kl_coef_and_clip_eps_high_sweep_in_one_program():
    """sweep.estimator.kl_coef / clip_eps_high write each run's β and ε_high into TrainState.extra; β = 0
    leaves the loss without a KL term, β > 0 adds one (the runs' losses differ on the same batches)."""
    import jax

    from pgrun.train.program import make_train
    from pgrun.train.sweep import init_runs, make_layout

    cfg = make_config(*TINY, "policy=tabular_prefix", "estimator=dapo", "iterations=2", "log_every=2",
                      "num_seeds=1", "estimator.dynamic_sampling=false",
                      "sweep.estimator.kl_coef=[0.0,1.0]", "sweep.estimator.clip_eps_high=[0.28,0.5]")
    lay, trainer = make_layout(cfg), make_train(cfg)
    assert lay.keys == ("estimator.kl_coef", "estimator.clip_eps_high")
    keys = np.stack([np.asarray(jax.random.PRNGKey(0))] * lay.num_runs)
    state = init_runs(trainer, keys, lay.values())
    assert state.extra.kl_coef.tolist() == [0.0, 0.0, 1.0, 1.0]
    np.testing.assert_allclose(state.extra.clip_eps_high, [0.28, 0.5, 0.28, 0.5])
    _, m = jax.jit(jax.vmap(trainer.chunk))(state)
    np.testing.assert_allclose(np.asarray(m["kl_beta"])[:, 0], [0.0, 0.0, 1.0, 1.0])
    with pytest.raises(ConfigError, match="not a group estimator"):
        make_config(*TINY, "estimator=reinforce", "sweep.estimator.kl_coef=[0.0,1.0]")
