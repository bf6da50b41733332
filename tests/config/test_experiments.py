"""Experiment files whose results the docs quote pin every setting those results depend on.

docs/gym_envs.md once said `+experiment=acrobot_actor_critic` solves 8/8 seeds; after the
default optimizer gained a linear step-size decay it solved 5/8, because the file left the
schedule to the default. Each documented experiment now sets every key below itself.
"""

from __future__ import annotations

import pytest
from helpers import CONFIG_DIR, make_config
from omegaconf import OmegaConf

from pgrun.config.validate import flatten

# the experiments whose figures docs/gym_envs.md quotes (scripts/learning_checks.py runs them)
DOCUMENTED = ["acrobot_actor_critic", "cartpole_actor_critic", "pendulum_actor_critic", "mountaincar_actor_critic",
              "cartpole_fast"]
GROUPS = ("env", "policy", "estimator", "optimizer")
PINNED = [
    "seed", "num_seeds", "iterations", "episodes_per_iteration", "gamma", "env.max_episode_steps",
    "policy.hidden", "policy.activation", "policy.init_sigma",
    "optimizer.lr", "optimizer.schedule", "optimizer.max_grad_norm",
    "estimator.weight", "estimator.baseline", "estimator.gae_lambda", "estimator.normalize_advantages",
    "estimator.entropy_coef", "estimator.critic_lr", "estimator.critic_hidden", "estimator.critic_updates",
    "estimator.rollout", "estimator.correction", "estimator.constraint", "estimator.epochs",
    "estimator.minibatches",
]


@pytest.mark.parametrize("name", DOCUMENTED)
def test_documented_experiment_pins_every_setting(name):
    raw = OmegaConf.to_container(OmegaConf.load(f"{CONFIG_DIR}/experiment/{name}.yaml"))
    assert isinstance(raw, dict)
    chosen = {list(d)[0].removeprefix("override /"): list(d.values())[0] for d in raw.pop("defaults")}
    assert set(GROUPS) <= set(chosen), f"{name} leaves a config group to the default: {set(GROUPS) - set(chosen)}"
    keys = flatten(raw)  # {dotted key: value}, a list being one value
    missing = [k for k in PINNED if k not in keys]
    assert not missing, f"configs/experiment/{name}.yaml does not pin {missing}"


@pytest.mark.parametrize("name", DOCUMENTED)
def test_pinned_values_survive_composition(name):
    """What the file says is what runs (no later default overrides a pinned key)."""
    raw = OmegaConf.load(f"{CONFIG_DIR}/experiment/{name}.yaml")
    cfg = OmegaConf.create(make_config(f"+experiment={name}").to_dict())
    for key in PINNED:
        assert OmegaConf.select(cfg, key) == OmegaConf.select(raw, key), key


def test_cartpole_fast_is_the_benchmarked_command():
    """docs/benchmarks.md measured `estimator=baseline env=CartPole estimator.baseline=batch_mean_time
    optimizer.lr=0.01 iterations=60`; the preset is exactly that command."""
    fast = make_config("+experiment=cartpole_fast").to_dict()
    measured = make_config("estimator=baseline", "env=CartPole", "estimator.baseline=batch_mean_time",
                           "optimizer.lr=0.01", "iterations=60").to_dict()
    assert fast == measured
