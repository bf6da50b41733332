"""Importance weights beyond float32 in the batch-reusing update (issue 12, section 3).

The overflow is forced by recording the behaviour log-probabilities 100 (or 50) nats lower than
they were: to the update this is a batch whose actions the sampling policy made e^-100 as likely,
so at θ' = θ every step has log ρ = +100 and an episode of L steps log w = 100·L > 88.72.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pgrun.core.offpolicy import LOG_FLOAT32_MAX, max_log_weight, truncated_log_weights
from pgrun.errors import ImportanceWeightOverflow, TrainingDiverged
from pgrun.runner.divergence import diverged
from pgrun.train.program import make_train
from tests.helpers import make_config

BASE = ("env=Chain", "policy=softmax_linear", "episodes_per_iteration=4", "estimator.epochs=2", "iterations=2",
        "progress=false")


@functools.lru_cache(maxsize=None)
def compiled_iteration(*overrides: str):
    """(key, shift) -> one iteration's metrics, sampling normally and then lowering the recorded
    log π_θ(a|s) by `shift` (traced: one compilation per config)."""
    trainer = make_train(make_config(*BASE, *overrides))

    def one(key, shift):
        state, batch = trainer.sample(trainer.init(key))
        batch = batch._replace(log_prob=jnp.where(batch.valid, batch.log_prob - shift, batch.log_prob))
        return trainer.update(state, batch)[1]

    return jax.jit(one)


def update_with_shift(shift: float, *overrides: str) -> dict:
    return jax.device_get(compiled_iteration(*overrides)(jax.random.PRNGKey(0), jnp.float32(shift)))


@pytest.mark.parametrize("estimator,shift,overflow,log_w_min", [
    ("is_trajectory", 0.0, False, None),
    ("is_trajectory", 100.0, True, 100.0),    # w = e^{100 L}: not a float32
    ("is_per_decision", 50.0, True, 50.0),    # w = e^50 is a float32, the gradient's norm (~e^100) is not
    ("is_per_decision", 30.0, False, 30.0),   # e^30: the update goes ahead
])
def test_weight_overflow_flag(estimator, shift, overflow, log_w_min):
    m = update_with_shift(shift, f"estimator={estimator}")
    assert bool(m["weight_overflow"]) is overflow
    assert bool(m["finite"]) is (not overflow)
    if log_w_min is not None:
        assert float(m["log_weight_max"]) >= log_w_min
    if not overflow:
        assert float(m["log_weight_max"]) <= LOG_FLOAT32_MAX and math.isfinite(float(m["loss"]))


def test_clip_weight_bounds_the_log_weight_an_update_uses():
    """The quantity the overflow check reads: with clip_weight = 10 an episode log-weight of 400
    enters the update as log 10."""
    log_rho = jnp.full((4, 2), 100.0).at[:, 1].set(-100.0)
    cont, valid = jnp.ones((4, 2)).at[-1].set(0.0), jnp.ones((4, 2), bool)
    assert float(max_log_weight(truncated_log_weights(log_rho, cont, valid, "trajectory"), valid)) == 400.0
    clipped = truncated_log_weights(log_rho, cont, valid, "trajectory", 10.0)
    assert float(max_log_weight(clipped, valid)) == pytest.approx(math.log(10.0), rel=1e-6)
    assert float(max_log_weight(clipped, jnp.zeros((4, 2), bool))) == -math.inf


@pytest.mark.slow  # a third compiled program
def test_ppo_stays_finite_when_its_ratio_would_overflow():
    """log ρ = 100 on every step: ρ = inf before the saturation, and the clipped side's gradient
    0 · inf = NaN made the run diverge. With it the update is finite, and the clip zeroes the
    A > 0 steps' gradient."""
    m = update_with_shift(100.0, "estimator=ppo", "estimator.rollout=episodes")
    assert bool(m["finite"]) and not bool(m["weight_overflow"])
    assert math.isfinite(float(m["loss"])) and math.isfinite(float(m["grad_norm"]))


def test_divergence_cause_is_named():
    """The host picks the error from the program's flags: overflow -> ImportanceWeightOverflow
    (exit 3 as any TrainingDiverged) naming the cause, the log-weight and both fixes."""
    m = {"weight_overflow": np.array([[False, True]]), "log_weight_max": np.array([[3.0, 312.5]])}
    e = diverged(m, (0, 1), 7, "seed 4", "/x/metrics.csv")
    assert isinstance(e, ImportanceWeightOverflow) and isinstance(e, TrainingDiverged)
    msg = str(e)
    for phrase in ("importance-weight overflow", "iteration 7", "seed 4", "312.5", "estimator.clip_weight",
                   "estimator=is_per_decision", "/x/metrics.csv", "1..6"):
        assert phrase in msg, (phrase, msg)
    plain = diverged(m, (0, 0), 7, "seed 4", "/x/metrics.csv")
    assert type(plain) is TrainingDiverged and "overflow" not in str(plain)
    assert type(diverged({}, (0, 0), 7, "seed 4", "/x/metrics.csv")) is TrainingDiverged  # on-policy metrics
    # the host loop's metrics have one axis, the seeds
    m1 = {"weight_overflow": np.array([False, True]), "log_weight_max": np.array([3.0, 95.25])}
    assert "exp(95.25)" in str(diverged(m1, (1,), 2, "seed 1", "m.csv"))
    assert type(diverged(m1, (0,), 2, "seed 0", "m.csv")) is TrainingDiverged
