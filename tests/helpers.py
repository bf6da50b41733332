"""Configs for tests, made the way `pgrun` makes them: composed by Hydra, then `pgrun.config.load`."""

from __future__ import annotations

from omegaconf import DictConfig

from pgrun.cli import expand_gym_env
from pgrun.config import Config, compose, load


def compose_config(*overrides: str) -> DictConfig:
    """The composed DictConfig of `pgrun overrides...` (before validation)."""
    return compose(expand_gym_env(list(overrides)))


def make_config(*overrides: str) -> Config:
    """The typed, validated Config of `pgrun overrides...`; ConfigError if it cannot run."""
    return load(compose_config(*overrides))
