"""Vmapped sweeps: the grid, its validation, values living in the state, one program for all."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from scale_helpers import config, read_rows, without

from pgrun.errors import ConfigError
from pgrun.runner.loop import run
from pgrun.train.program import make_train
from pgrun.train.sweep import init_runs, learning_rate, make_layout


def test_grid_is_point_major_over_shared_seeds():
    cfg = config("sweep.gamma=[0.9,0.99]", "sweep.optimizer.lr=[0.1,0.2,0.3]", "seed=5")
    lay = make_layout(cfg)
    assert lay.keys == ("optimizer.lr", "gamma")  # SWEEP_RULES order, not command-line order
    assert len(lay.points) == 6 and lay.points[1] == {"optimizer.lr": 0.1, "gamma": 0.99}
    assert lay.run_seeds == [5, 6] * 6 and lay.run_points == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert lay.values()["optimizer.lr"].tolist() == pytest.approx([0.1] * 4 + [0.2] * 4 + [0.3] * 4)
    assert lay.columns(["iteration", "seed", "loss"]) == ["iteration", "seed", "point", "optimizer.lr", "gamma", "loss"]
    assert make_layout(config()).columns(["iteration", "seed"]) == ["iteration", "seed"]


@pytest.mark.parametrize("override, words", [
    ("sweep.policy.hidden=[[8],[16]]", ["structural", "pgrun -m policy.hidden", "optimizer.lr"]),
    ("sweep.num_seeds=[2,4]", ["structural", "-m"]),
    ("sweep.env.name=[Bandit,Chain]", ["structural", "-m"]),
    ("sweep.optimizer.lrr=[0.1]", ["not a config key", "optimizer.lr"]),
    ("sweep.gamma=[0.9,1.5]", ["sweep.gamma", "in [0, 1]"]),
    ("sweep.optimizer.lr=[0.1,-1]", ["> 0"]),
    ("sweep.estimator.critic_lr=[0.1,0.2]", ["no critic"]),
])
def test_bad_sweeps_are_config_errors(override, words):
    with pytest.raises(ConfigError) as e:
        config(override)  # load validates
    for w in words:
        assert w in str(e.value)


def test_values_are_state_not_constants():
    """Each run's lr / gamma / critic lr sits in its state, and one compiled chunk serves any value."""
    cfg = config("estimator=value_baseline", "sweep.optimizer.lr=[0.1,0.4]", "sweep.estimator.critic_lr=[0.01]",
                 "sweep.gamma=[0.5]")
    lay, trainer = make_layout(cfg), make_train(cfg)
    keys = np.stack([np.asarray(jax.random.PRNGKey(s)) for s in lay.run_seeds])
    state = init_runs(trainer, keys, lay.values())
    assert learning_rate(state.opt_state).tolist() == pytest.approx([0.1, 0.1, 0.4, 0.4])
    assert learning_rate(state.critic_opt_state).tolist() == pytest.approx([0.01] * 4)
    assert state.hp.gamma.tolist() == [0.5] * 4
    chunk = jax.jit(jax.vmap(trainer.chunk)).lower(state).compile()
    new, _ = chunk(state)
    step = jax.tree_util.tree_map(lambda a, b: np.abs(np.asarray(a) - np.asarray(b)).max(axis=tuple(range(1, a.ndim))),
                                  new.params, state.params)
    moved = np.asarray(step["theta"])
    assert moved[2] > moved[0] and moved[3] > moved[1]  # same seed, 4x the learning rate: bigger steps


def _same_metrics(a_rows, b_rows, drop=("wall_s", "point", "optimizer.lr")):
    for a, b in zip(without(a_rows, *drop), without(b_rows, *drop), strict=True):
        assert a.keys() == b.keys()
        for k in a:
            assert a[k] == b[k] or float(a[k]) == pytest.approx(float(b[k]), rel=1e-5, abs=1e-6), (k, a, b)


def test_sweep_point_0_matches_a_plain_run(tmp_path):
    """Point 0 of a vmapped sweep (runs 0..S-1, like a plain run's) gives the plain run's metrics.

    Only point 0 under pgrun's default rbg PRNG: vmapped rbg draws every run's bits from run 0's
    key at the run's position in the batch, so other points see other random numbers."""
    swept = run(config("sweep.optimizer.lr=[0.05,0.2]"), str(tmp_path / "sweep"))
    rows = read_rows(str(tmp_path / "sweep" / "metrics.csv"))
    assert list(rows[0])[:4] == ["iteration", "seed", "point", "optimizer.lr"]
    assert len(rows) == 6 * 2 * 2 and swept["best_point"] in (0, 1)
    assert [p["optimizer.lr"] for p in swept["points"]] == [0.05, 0.2]
    plain = run(config("optimizer.lr=0.05"), str(tmp_path / "plain"))
    _same_metrics([r for r in rows if r["point"] == "0"], read_rows(str(tmp_path / "plain" / "metrics.csv")))
    assert swept["points"][0]["final_return_mean"] == pytest.approx(plain["final_return_mean"], rel=1e-5)


def test_every_sweep_point_matches_its_plain_run_under_threefry(tmp_path):
    """With a PRNG whose vmap keeps runs apart (threefry), every point equals a separate run."""
    jax.config.update("jax_default_prng_impl", "threefry2x32")
    try:
        run(config("sweep.optimizer.lr=[0.05,0.2]", "iterations=4"), str(tmp_path / "sweep"))
        rows = read_rows(str(tmp_path / "sweep" / "metrics.csv"))
        for p, lr in enumerate([0.05, 0.2]):
            run(config(f"optimizer.lr={lr}", "iterations=4"), str(tmp_path / f"plain{p}"))
            _same_metrics([r for r in rows if r["point"] == str(p)],
                          read_rows(str(tmp_path / f"plain{p}" / "metrics.csv")))
    finally:
        jax.config.update("jax_default_prng_impl", "rbg")


def test_kl_beta_is_sweepable_with_a_kl_penalty_only():
    """sweep.estimator.kl_beta sets each run's initial β (state.extra); β = 0 stays 0 (no penalty)."""
    base = ("env=Bandit", "estimator=is_per_decision", "estimator.constraint=kl_penalty", "estimator.epochs=2")
    cfg = config(*base, "sweep.estimator.kl_beta=[0.0,0.5]")
    lay, trainer = make_layout(cfg), make_train(cfg)
    keys = np.stack([np.asarray(jax.random.PRNGKey(s)) for s in lay.run_seeds])
    state = init_runs(trainer, keys, lay.values())
    assert state.extra.kl_beta.tolist() == [0.0, 0.0, 0.5, 0.5]
    new, m = jax.jit(jax.vmap(trainer.chunk))(state)
    assert np.asarray(m["kl_beta"])[:2].max() == 0.0 and np.asarray(new.extra.kl_beta)[:2].max() == 0.0
    assert np.asarray(m["kl_beta"])[2:].min() > 0.0
    with pytest.raises(ConfigError, match="no KL penalty"):
        config(*base, "estimator.constraint=none", "sweep.estimator.kl_beta=[0.0,1.0]")
    with pytest.raises(ConfigError, match=">= 0"):
        config(*base, "sweep.estimator.kl_beta=[-1.0]")


def test_every_sweepable_key_has_a_rule_and_a_setter():
    """config.validate owns which keys vmap and their valid values; train.sweep how each is written."""
    from pgrun.config.validate import SWEEP_RULES
    from pgrun.train.sweep import SETTERS

    assert list(SETTERS) == list(SWEEP_RULES)
