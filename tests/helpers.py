"""Configs for tests, made the way `pgrun` makes them: composed by Hydra, then `pgrun.config.loader`."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from pgrun.cli import expand_gym_env
from pgrun.config import Config, compose, config_dir, load

ROOT = Path(__file__).resolve().parents[1]  # the checkout
CONFIG_DIR = config_dir()
DATA = ROOT / "tests" / "data"


def compose_config(*overrides: str) -> DictConfig:
    """The composed DictConfig of `pgrun overrides...` (before validation)."""
    return compose(expand_gym_env(list(overrides)))


def make_config(*overrides: str) -> Config:
    """The typed, validated Config of `pgrun overrides...`; ConfigError if it cannot run."""
    return load(compose_config(*overrides))
