"""`pgrun.config.loader`: the one way from a composed DictConfig (or a stored dict) to a typed,
validated Config; a run validates once and builds its env once."""

from __future__ import annotations

import dataclasses

import pytest
from helpers import compose_config, make_config
from omegaconf import OmegaConf
from scale_helpers import TINY

import pgrun.config.loader as load_module
import pgrun.train.build as build_module
from pgrun.config import Config, load
from pgrun.config.schema import EnvConfig, EstimatorConfig
from pgrun.errors import ConfigError, UnknownKeyError
from pgrun.runner.loop import run
from pgrun.train.build import build


def test_load_gives_typed_dataclasses_from_a_dictconfig_and_from_a_stored_dict():
    composed = compose_config("estimator=ppo", "sweep.optimizer.lr=[0.001,0.003]", "env.params.gravity=12")
    config = load(composed)
    assert isinstance(config, Config) and isinstance(config.env, EnvConfig)
    assert isinstance(config.estimator, EstimatorConfig) and config.estimator.correction == "clip"
    assert config.sweep == {"optimizer": {"lr": [0.001, 0.003]}} and config.env.params == {"gravity": 12}
    # what summary.json and checkpoints store: Hydra's own container, unchanged by the typed config
    stored = OmegaConf.to_container(composed, resolve=True)
    assert config.to_dict() == stored
    assert load(stored) == config  # a stored config loads to the same Config


@pytest.mark.parametrize("override, words", [
    ("gamma=1.5", ["gamma=1.5", "[0, 1]"]),
    ("estimator.weight=nope", ["estimator.weight=nope", "valid choices", "reward_to_go"]),
    ("env=gym", ["env=gym needs a gymnasium id", "env=gym:CartPole-v1"]),
    ("num_seeds=0", ["num_seeds=0", ">= 1"]),
])
def test_load_names_the_bad_key_and_the_valid_values(override, words):
    with pytest.raises(ConfigError) as e:
        make_config(override)
    for w in words:
        assert w in str(e.value)


@pytest.mark.parametrize("overrides, words", [
    (["estimator=reinforce", "estimator.gamma_t=true"],
     ["estimator.gamma_t=true", "estimator.weight=total_return", "valid choices with gamma_t: "
      "estimator.weight=reward_to_go, gae"]),
    (["estimator=reward_to_go", "estimator.rollout=steps"],
     ["estimator.rollout=steps", "estimator.weight=reward_to_go", "without bootstrapping", "estimator.weight=gae",
      "estimator.rollout=episodes"]),
    (["estimator=value_baseline", "estimator.rollout=steps"], ["estimator.weight=reward_to_go", "baseline=value"]),
    (["estimator=is_per_decision", "estimator.rollout=steps", "estimator.baseline=none"],
     ["estimator.rollout=steps", "estimator.weight=reward_to_go"]),
])
def test_gamma_t_and_monte_carlo_weights_in_steps_mode_are_checked(overrides, words):
    with pytest.raises(ConfigError) as e:
        make_config(*overrides)
    for w in words:
        assert w in str(e.value)


@pytest.mark.parametrize("overrides", [["estimator=baseline", "estimator.gamma_t=true"],
                                       ["estimator=ppo", "estimator.gamma_t=true"],
                                       ["estimator=actor_critic", "estimator.rollout=steps", "estimator.gamma_t=true"]])
def test_gamma_t_loads_with_reward_to_go_and_gae(overrides):
    assert make_config(*overrides).estimator.gamma_t is True
    assert make_config(*overrides[:-1]).estimator.gamma_t is False  # the default: the lecture's form


def test_a_stored_config_is_validated_too():
    stored = make_config().to_dict()
    stored["optimizer"]["lr"] = -1.0
    with pytest.raises(ConfigError, match="optimizer.lr=-1.0"):
        load(stored)


def test_a_run_validates_once_and_builds_its_env_once(tmp_path, monkeypatch):
    calls = {"validate": 0, "make_env": 0}

    def counted(name, fn):
        def wrapper(*a, **k):
            calls[name] += 1
            return fn(*a, **k)
        return wrapper

    monkeypatch.setattr(load_module, "validate", counted("validate", load_module.validate))
    monkeypatch.setattr(build_module, "make_env", counted("make_env", build_module.make_env))
    config = make_config(*TINY)
    run(config, str(tmp_path / "run"))
    assert calls == {"validate": 1, "make_env": 1}


def test_env_checks_happen_in_build_with_typed_errors():
    with pytest.raises(ConfigError, match="policy=gaussian_linear needs a continuous action space"):
        build(make_config("env=CartPole", "policy=gaussian_linear"))
    with pytest.raises(UnknownKeyError) as e:
        build(make_config("env=Bandit", "env.params.gravity=3"))
    assert isinstance(e.value, KeyError) and str(e.value).startswith("env.params: unknown key")  # not quoted
    # the gymnasium vector env's mode is checked for env=gym:<id> only (other envs ignore it)
    build(make_config("env=CartPole", "env.vectorization_mode=threads"))
    with pytest.raises(ConfigError, match="env.vectorization_mode=threads is not valid; valid choices: sync, async"):
        build(make_config("env=gym:CartPole-v1", "env.vectorization_mode=threads"))
    unknown = dataclasses.replace(make_config(), env=EnvConfig(name="NoSuchEnv"))
    with pytest.raises(ConfigError, match="env=NoSuchEnv is not a known environment; valid choices"):
        build(unknown)


@pytest.mark.parametrize("key, kind", [("optimizer.lrr", "not a config key"), ("to_dict", "not a config key"),
                                       ("env.params.nope", "not a config key"), ("env.name", "structural"),
                                       ("env.params.gravity", "structural"), ("policy.hidden.1", "structural"),
                                       ("policy.hidden.2", "not a config key")])
def test_a_sweep_of_a_key_that_cannot_vmap_says_whether_the_key_exists(key, kind):
    params = ["env.params.gravity=12"]  # set, so env.params.gravity is a key of this config
    with pytest.raises(ConfigError, match=kind):
        make_config("env=CartPole", *params, f"sweep.{key}=[1,2]")
