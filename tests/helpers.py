"""Configs for tests, made the way `pgrun` makes them: composed by Hydra, then `pgrun.config.loader`."""

from __future__ import annotations

import importlib
import importlib.util
import os
from pathlib import Path
from types import ModuleType

import pytest
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


# Optional plugins the test extra installs (tensorboard, wandb, trackio, hydra-submitit-launcher, ...):
# their tests skip where one is missing, except under PGRUN_REQUIRE_OPTIONAL=1 (.ci/run sets it after
# installing the test extra), where a missing plugin fails the test instead of hiding a broken install.
REQUIRE_OPTIONAL_ENV = "PGRUN_REQUIRE_OPTIONAL"


def require_optional() -> bool:
    return os.environ.get(REQUIRE_OPTIONAL_ENV, "") not in ("", "0")


def optional_module(name: str) -> ModuleType:
    """`pytest.importorskip(name)`, but an ImportError under PGRUN_REQUIRE_OPTIONAL=1."""
    if require_optional():
        return importlib.import_module(name)
    return pytest.importorskip(name)


def optional_missing(name: str) -> bool:
    """For `skipif`: the module is not installed and PGRUN_REQUIRE_OPTIONAL is not set (when it is,
    the test runs and fails where the plugin is missing)."""
    return not require_optional() and importlib.util.find_spec(name) is None
