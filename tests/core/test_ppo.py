"""PPO's clipped surrogate and the adaptive KL penalty (pgrun.core.ppo), and PPO runs through make_train.

Checks: L^CLIP, its gradient and the clip fraction on a hand-computed batch; the k3 KL
estimate; β's ×2 / ÷2 rule; minibatch splitting; early stopping on target_kl; one short
PPO run on CartPole that must learn (steps mode, all diagnostics logged); the CLI writes the
new metric columns.
"""

import csv
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import CONFIG_DIR, ROOT, make_config

from pgrun.core.minibatches import split_columns, split_transitions
from pgrun.core.ppo import adapt_kl_beta, approx_kl, clipped_surrogate
from pgrun.train.program import init_seeds, make_train


def test_clipped_surrogate_by_hand():
    # ρ = 1.5, 0.5, 1.1, 0.7 with A = +1, +1, -1, -1 and ε = 0.2; a fifth, invalid step is ignored.
    rho = jnp.array([1.5, 0.5, 1.1, 0.7, 50.0])
    adv = jnp.array([1.0, 1.0, -1.0, -1.0, 9.0])
    valid = jnp.array([True, True, True, True, False])
    # min(ρA, clip(ρ)A): min(1.5, 1.2) = 1.2;  min(.5, .8) = .5;  min(-1.1, -1.1) = -1.1;  min(-.7, -.8) = -.8
    # L = (1.2 + .5 - 1.1 - .8) / 4 = -.05;  |ρ - 1| > .2 for 1.5, .5, .7: clip fraction 3/4
    surrogate, clip_frac = clipped_surrogate(jnp.log(rho), adv, valid, 0.2)
    np.testing.assert_allclose(float(surrogate), -0.05, atol=1e-6)
    np.testing.assert_allclose(float(clip_frac), 0.75)
    # ∂L/∂log ρ_t = ρ_t A_t / 4 where the unclipped term is the min, 0 where the clip bites:
    # steps 0 (ρA = 1.5 > 1.2) and 3 (-.7 > -.8) are clipped; steps 1 and 2 pass; step 4 is invalid.
    g = jax.grad(lambda lr: clipped_surrogate(lr, adv, valid, 0.2)[0])(jnp.log(rho))
    np.testing.assert_allclose(g, [0.0, 0.5 / 4, -1.1 / 4, 0.0, 0.0], atol=1e-6)


def test_clipped_surrogate_at_ratio_one_is_the_on_policy_surrogate():
    adv = jax.random.normal(jax.random.PRNGKey(0), (6, 3))
    valid = jnp.ones((6, 3), bool)
    g = jax.grad(lambda lr: clipped_surrogate(lr, adv, valid, 0.2)[0])(jnp.zeros((6, 3)))
    np.testing.assert_allclose(g, adv / 18, rtol=1e-6)  # mean over steps of ∇log π · A


def test_approx_kl_and_beta_rule_by_hand():
    log_rho = jnp.log(jnp.array([2.0, 0.5]))
    # (ρ - 1) - log ρ: (1 - log 2) and (-.5 + log 2); mean = .25
    np.testing.assert_allclose(float(approx_kl(log_rho, jnp.array([True, True]))), 0.25, rtol=1e-6)
    assert float(approx_kl(jnp.zeros(3), jnp.ones(3, bool))) == 0.0
    target = 0.01
    assert float(adapt_kl_beta(1.0, 0.016, target)) == 2.0   # > 1.5 δ: doubled
    assert float(adapt_kl_beta(1.0, 0.006, target)) == 0.5   # < δ / 1.5: halved
    assert float(adapt_kl_beta(1.0, 0.012, target)) == 1.0   # within the tolerance band: kept


def test_minibatch_splits_partition_the_batch():
    x = jnp.arange(24).reshape(4, 6)  # [T, B]
    cols = split_columns(jax.random.PRNGKey(0), {"x": x}, 3)["x"]       # [3, 4, 2]
    assert cols.shape == (3, 4, 2)
    got = sorted(map(tuple, np.asarray(cols).transpose(0, 2, 1).reshape(6, 4).tolist()))
    assert got == sorted(map(tuple, np.asarray(x).T.tolist()))        # whole columns, each once
    tr = split_transitions(jax.random.PRNGKey(0), {"x": x}, 4)["x"]     # [4, 1, 6]
    assert tr.shape == (4, 1, 6) and sorted(np.asarray(tr).ravel().tolist()) == list(range(24))
    np.testing.assert_array_equal(split_columns(None, {"x": x}, 1)["x"][0], x)  # M = 1: as is


def test_ppo_learns_cartpole_in_steps_mode_and_logs_diagnostics():
    cfg = make_config("estimator=ppo", "env=CartPole", "iterations=15", "log_every=15", "num_envs=8",
                   "num_steps=128", "policy.hidden=[32,32]", "estimator.critic_hidden=[32,32]",
                   "estimator.target_kl=0.05")
    tr = make_train(cfg)
    state = init_seeds(tr.init, jax.random.split(jax.random.PRNGKey(0), 2))
    state, m = jax.jit(jax.vmap(tr.chunk))(state)
    m = jax.device_get(m)
    assert m["finite"].all()
    assert (m["env_steps"][:, -1] == 15 * 8 * 128).all()
    assert (m["episodes"] > 0).all()
    # learns: the mean return of the last 3 iterations exceeds that of the first 2 by more than 4
    # standard errors (Welch, over the (iteration, seed) values; one-sided false alarm ≈ 3e-5 if
    # nothing were learnt)
    ret = m["return_mean"]
    early, late = ret[:, :2].ravel(), ret[:, -3:].ravel()
    se = np.sqrt(early.var(ddof=1) / early.size + late.var(ddof=1) / late.size)
    assert late.mean() - early.mean() > 4 * se, ret
    assert ((m["clip_frac"] >= 0) & (m["clip_frac"] <= 1)).all() and (m["clip_frac"] > 0).any()
    assert (m["updates"] >= 1).all() and (m["updates"] <= 16).all()
    assert (m["kl_old_new"] > 0).all() and (m["is_ess"] <= 1 + 1e-6).all()
    assert np.isnan(m["kl_beta"]).all() and np.isnan(m["trpo_kl"]).all()
    # the env state is carried across iterations: episodes end at all sorts of steps
    assert np.asarray(state.extra.env.t).std() > 0


def test_kl_penalty_adapts_beta_and_target_kl_stops_early():
    """kl_penalty with a tiny KL target: β follows the ×2 / ÷2 rule; with target_kl the iteration
    stops once the estimated KL(old ‖ new) exceeds it (fewer than epochs x minibatches steps)."""
    cfg = make_config("estimator=kl_penalty", "env=CartPole", "iterations=6", "log_every=6", "num_envs=4",
                   "num_steps=64", "policy.hidden=[16]", "estimator.kl_target=0.0005", "estimator.epochs=8",
                   "optimizer.lr=0.01", "estimator.target_kl=0.002")
    tr = make_train(cfg)
    state, m = jax.jit(tr.chunk)(tr.init(jax.random.PRNGKey(0)))
    beta, kl, updates = np.asarray(m["kl_beta"]), np.asarray(m["kl_old_new"]), np.asarray(m["updates"])
    np.testing.assert_allclose(beta[0], 1.0)
    for i in range(5):  # β_{i+1} follows the ×2 / ÷2 rule on the KL of iteration i
        np.testing.assert_allclose(beta[i + 1], float(adapt_kl_beta(beta[i], kl[i], 0.0005)), rtol=1e-6)
    assert beta[-1] > 1.0  # a tiny target: β grew
    assert ((updates >= 1) & (updates <= 32)).all() and (updates < 32).any()
    assert bool(m["finite"].all())


@pytest.mark.slow  # cold-cache CI time; the non-slow suite keeps a test of the same path (ppo learns in steps mode)
def test_cli_ppo_run_writes_the_new_columns(tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "pgrun.cli", "-cp", CONFIG_DIR, "estimator=ppo", "env=CartPole", "iterations=2",
           "num_seeds=2", "num_envs=4", "num_steps=32", "policy.hidden=[8]", "estimator.critic_hidden=[8]",
           "progress=false", f"hydra.run.dir={out}"]
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    subprocess.run(cmd, check=True, cwd=ROOT, env=env, capture_output=True, timeout=300)
    rows = list(csv.DictReader(open(out / "metrics.csv")))
    assert len(rows) == 4
    for col in ("is_weight_mean", "is_weight_max", "is_ess", "log_ratio_std", "kl_old_new", "clip_frac", "updates"):
        assert all(r[col] != "" for r in rows), col
    assert all(r["kl_beta"] == "" and r["trpo_kl"] == "" for r in rows)  # not applicable: empty
