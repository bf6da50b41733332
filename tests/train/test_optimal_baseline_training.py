"""estimator=optimal_baseline as a training estimator: its b* sums live in TrainState.baseline,
survive a resume, are validated, and the estimator learns."""

from __future__ import annotations

import os
import shutil

import jax
import numpy as np
import pytest
from helpers import make_config
from scale_helpers import config, read_rows, without

from pgrun.errors import ConfigError
from pgrun.runner.checkpoint import latest_step
from pgrun.runner.loop import run
from pgrun.train.program import init_seeds, make_train

OPT = ["estimator=optimal_baseline", "log_every=2", "checkpoint_every=4", "optimizer.schedule=constant"]


def test_the_sums_are_carried_in_the_state_and_updated_every_iteration():
    cfg = config(*OPT, "iterations=4")
    trainer = make_train(cfg)
    state = init_seeds(trainer.init, jax.random.split(jax.random.PRNGKey(0), 2))
    P = jax.flatten_util.ravel_pytree(jax.tree_util.tree_map(lambda x: x[0], state.params))[0].size
    assert state.baseline.gu.shape == (2, P) and float(np.abs(state.baseline.gg).sum()) == 0.0
    new, _ = jax.jit(jax.vmap(trainer.chunk))(state)
    assert float(np.min(new.baseline.gg.sum(-1))) > 0.0  # the sums hold the batches seen
    assert make_train(config("estimator=reinforce")).init(jax.random.PRNGKey(0)).baseline == ()


def test_resume_gives_the_uninterrupted_run(tmp_path):
    """The b* sums are part of the checkpoint: a run cut at iteration 4 and resumed writes the
    same metrics as one that was not (with b* restarting from 0 the gradients would differ)."""
    straight, cut = str(tmp_path / "straight"), str(tmp_path / "cut")
    run(config(*OPT, "iterations=8"), straight)
    run(config(*OPT, "iterations=6"), cut)  # checkpoints at 4 and 6 (the end)
    shutil.rmtree(os.path.join(cut, "checkpoints", "6"))
    assert latest_step(cut) == 4
    resumed = run(config(*OPT, "iterations=8", f"resume={cut}"), str(tmp_path / "ignored"))
    a, b = read_rows(os.path.join(straight, "metrics.csv")), read_rows(os.path.join(cut, "metrics.csv"))
    assert resumed["resumed_from"] == 4 and len(a) == 8 * 2
    assert without(a, "wall_s") == without(b, "wall_s")


@pytest.mark.parametrize("override, words", [
    ("estimator.baseline_decay=1.5", ["estimator.baseline_decay=1.5", "[0, 1]"]),
    ("estimator.baseline_decay=-0.1", ["estimator.baseline_decay=-0.1", "[0, 1]"]),
    ("estimator.weight=gae", ["estimator.weight=gae", "total_return, reward_to_go"]),
    ("estimator.epochs=2", ["estimator.baseline=optimal", "estimator.epochs=1"]),
])
def test_bad_optimal_baseline_settings_name_the_key(override, words):
    with pytest.raises(ConfigError) as e:
        make_config("env=Bandit", "policy=softmax_linear", "estimator=optimal_baseline", override)
    for w in words:
        assert w in str(e.value)


@pytest.mark.slow
@pytest.mark.parametrize("weight", ["reward_to_go", "total_return"])
def test_optimal_baseline_learns_the_chain(tmp_path, weight):
    """From θ = 0 (the uniform policy, exact J = -0.595; pgrun/envs/chain.py) 40 updates of 16
    episodes must lift the mean final return (last 10 iterations × 4 seeds = 640 episodes) above
    J(uniform) + 1. Returns lie in [-12.5, 15], so one episode's std is < 13.75 and the standard
    error of the mean of 640 independent episodes < 0.55: a policy that stayed uniform passes with
    probability < 4% even under that crude bound (measured: 1.2 for reward_to_go weights)."""
    cfg = make_config("env=Chain", "policy=softmax_linear", "policy.features=env", "estimator=optimal_baseline",
                      f"estimator.weight={weight}", "iterations=40", "num_seeds=4", "episodes_per_iteration=16",
                      "optimizer.lr=0.1", "log_every=20", "progress=false")
    summary = run(cfg, str(tmp_path / "run"))
    assert summary["status"] == "completed"
    assert summary["final_return_mean"] > -0.595 + 1.0, summary["final_return_mean"]


def test_a_run_saved_before_baseline_decay_existed_resumes_only_at_the_default():
    """A stored config without estimator.baseline_decay (runs from older pgrun versions, e.g.
    tests/data/kl_penalty_run_v0) still resumes when the key is at its default; another value is a change."""
    from pgrun.runner.rundir import check_resume_config

    cfg = config("estimator=reinforce", "resume=/somewhere")
    stored = cfg.to_dict()
    del stored["estimator"]["baseline_decay"]
    check_resume_config(cfg, stored)  # no error
    changed = config("estimator=reinforce", "resume=/somewhere", "estimator.baseline_decay=0.5")
    with pytest.raises(ConfigError, match="estimator.baseline_decay"):
        check_resume_config(changed, stored)
