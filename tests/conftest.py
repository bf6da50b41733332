"""Shared fixtures. Tests mirror the packages (tests/core, tests/train, ...); configs come from
`helpers.make_config`, the same compose + load as the `pgrun` command line."""

from __future__ import annotations

import pytest
from helpers import make_config as _make_config

from pgrun.runner.cache import enable_compilation_cache


@pytest.fixture(scope="session", autouse=True)
def _compilation_cache():
    """The persistent XLA cache, as every pgrun entry point enables it."""
    enable_compilation_cache()


@pytest.fixture
def make_config():
    """`make_config(*overrides) -> Config`: compose + load, as the command line does."""
    return _make_config
