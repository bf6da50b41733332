"""Shared fixtures. Tests mirror the packages (tests/core, tests/train, ...); configs come from
`helpers.make_config` (a module, since parametrize lists and module-level fixtures use it too),
the same compose + load as the `pgrun` command line."""

from __future__ import annotations

import pytest

from pgrun.runner.cache import enable_compilation_cache


@pytest.fixture(scope="session", autouse=True)
def _compilation_cache():
    """The persistent XLA cache, as every pgrun entry point enables it."""
    enable_compilation_cache()
