"""Every batch-reusing estimator with every env and every policy family that fits its action
space: two iterations of a tiny vmapped run, finite, with the estimator's diagnostics logged.

108 compiles: marked slow (`pytest -m slow tests/train/test_offpolicy_matrix.py`); the fast suite
covers the same code through a few representative cases in test_offpolicy / test_ppo / test_trpo.
"""


import jax
import numpy as np
import pytest
from helpers import make_config

from pgrun.train.program import init_seeds, make_train

ESTIMATORS = ("is_trajectory", "is_per_decision", "is_ratio_one", "ppo", "kl_penalty", "trpo")
DISCRETE = ("CartPole", "Acrobot", "MountainCar", "Bandit", "Particle", "Chain")
CONTINUOUS = ("MountainCarContinuous", "Pendulum", "ParticleContinuous")
PAIRS = [(e, p) for e in DISCRETE for p in ("softmax_linear", "mlp")] + \
        [(e, p) for e in CONTINUOUS for p in ("gaussian_linear", "mlp")]


@pytest.mark.slow
@pytest.mark.parametrize("estimator", ESTIMATORS)
@pytest.mark.parametrize("env, policy", PAIRS)
def test_estimator_runs(estimator, env, policy):
    overrides = [f"estimator={estimator}", f"env={env}", f"policy={policy}", "iterations=2", "log_every=2",
                 "episodes_per_iteration=4", "env.max_episode_steps=12", "num_envs=4", "num_steps=8",
                 "policy.hidden=[8]", "estimator.critic_hidden=[8]", "estimator.minibatches=2"]
    if env == "Chain" and policy == "softmax_linear":
        overrides.append("policy.features=env")
    cfg = make_config(*overrides, *(["estimator.minibatches=1"] if estimator == "trpo" else []))
    tr = make_train(cfg)  # builds the env and checks the config against it
    state = init_seeds(tr.init, jax.random.split(jax.random.PRNGKey(0), 2))
    _, m = jax.jit(jax.vmap(tr.chunk))(state)
    m = jax.device_get(m)
    assert m["finite"].all()
    assert (m["kl_old_new"] >= 0).all() and np.isfinite(m["is_ess"]).all()
    if estimator == "ppo":
        assert np.isfinite(m["clip_frac"]).all()
    if estimator == "trpo":
        assert (m["trpo_kl"] <= cfg.estimator.max_kl).all()
    if estimator == "kl_penalty":
        assert np.isfinite(m["kl_beta"]).all()
