"""`build(config) -> Components`: the env, its params, the policy and the critic of a run, made once.

Everything the training program closes over that comes from the config is built here, with
the checks that need the env (`pgrun.config.validate.check_env`); the math below takes sizes,
spaces and callables, never the config.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, cast

import numpy as np
from gymnasium import spaces

from pgrun.config.group import SEQUENCE_POLICIES, TOKEN_KEYS
from pgrun.config.schema import Config, PolicyConfig
from pgrun.config.validate import check_env
from pgrun.core.cnn import cnn
from pgrun.core.estimators import needs_critic
from pgrun.core.policies import Policy, gaussian_linear, make_critic, mlp, softmax_linear
from pgrun.core.sequence_policies import gru, tabular_prefix, transformer
from pgrun.envs import make_env
from pgrun.envs.host import GYM_PREFIX


class Components(NamedTuple):
    env: Any                  # a pgrun env (PGEnv, FuncEnv adapter) or a HostEnv for env=gym:<id>
    env_params: Any           # the env's params with env.params.<key> overrides applied
    policy: Policy
    max_steps: int            # T, the time limit: env.max_episode_steps or the env's own
    use_critic: bool          # the estimator learns V_φ
    critic_init: Callable     # key -> φ
    critic_apply: Callable    # (φ, obs [..., obs_dim]) -> V [...]


def is_host_env(config: Config) -> bool:
    """True when the config selects a gymnasium env stepped on the host (env=gym:<id>)."""
    return config.env.name.startswith(GYM_PREFIX)


def make_policy(cfg: PolicyConfig, env: Any) -> Policy:
    """The policy family named by policy.name for the env's observation and action spaces."""
    obs_dim = int(np.prod(env.observation_space.shape))
    space = env.action_space
    if cfg.name == "softmax_linear":
        feature_fn = env.features if cfg.features == "env" else None
        return softmax_linear(obs_dim, int(space.n), feature_fn)
    if cfg.name in SEQUENCE_POLICIES:  # env=Tokens (checked by validate)
        P, V, H = env.prompt_len, env.vocab, env.horizon
        if cfg.name == "transformer":
            return transformer(P, V, H, cfg.width, cfg.layers, cfg.heads, cfg.kv_cache is not False)  # null: auto
        return gru(P, V, H, cfg.width) if cfg.name == "gru" else tabular_prefix(P, V, H)
    if cfg.name == "gaussian_linear":
        return gaussian_linear(obs_dim, int(np.prod(space.shape)), cfg.init_sigma, cfg.learn_sigma)
    if cfg.name == "cnn":  # check_env: the env has image observations
        return cnn(env.image_shape, space, cfg.channels, cfg.hidden, cfg.activation, cfg.init_sigma)
    return mlp(obs_dim, space, cfg.hidden, cfg.activation, cfg.init_sigma)


def build(config: Config) -> Components:
    """Make the env once, check the config against it, and build the policy and critic."""
    env = make_env(config.env.name, {k: v for k in TOKEN_KEYS if (v := getattr(config.env, k)) is not None})
    check_env(config, env_name=env.name, host=is_host_env(config),
              discrete=isinstance(env.action_space, spaces.Discrete), has_features=hasattr(env, "features"),
              time_limit=env.max_episode_steps, image_shape=getattr(env, "image_shape", None))
    env_params = env.params_from_overrides(dict(config.env.params))
    max_steps = int(cast(int, config.env.max_episode_steps or env.max_episode_steps))  # check_env: one is set
    obs_dim = int(np.prod(cast(tuple[int, ...], env.observation_space.shape)))
    est = config.estimator
    critic_init, critic_apply = make_critic(obs_dim, est.critic_hidden, config.policy.activation)
    return Components(env, env_params, make_policy(config.policy, env), max_steps,
                      needs_critic(est.weight, est.baseline), critic_init, critic_apply)
