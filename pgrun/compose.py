"""Compose pgrun configs in-process (no Hydra app, no output dir), as `pgrun` would.

`compose(overrides)` runs `hydra.compose("config", overrides)` over the config directory
with the typed schemas of `pgrun.config.register_configs()`. The directory is the
`configs/` next to the imported `pgrun` package when it exists (a source checkout or
git worktree, so its own configs/experiment/*.yaml are seen), else `pgrun.cli.CONFIG_DIR`
(the installed package data).
"""

from __future__ import annotations

import os

from hydra import compose as hydra_compose
from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

import pgrun
from pgrun.config import register_configs


def config_dir() -> str:
    here = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(pgrun.__file__))), "configs")
    if os.path.isfile(os.path.join(here, "config.yaml")):
        return here
    from pgrun.cli import CONFIG_DIR
    return CONFIG_DIR


def compose(overrides: list[str] | tuple[str, ...] = ()):
    """The pgrun config with Hydra-style `overrides` applied (e.g. ["env=Bandit", "seed=3"]).

    As on the `pgrun` command line, `env.params.<name>=v` adds a key to the (empty by
    default) env.params dict.
    """
    overrides = [("++" + o) if o.startswith("env.params.") else o for o in overrides]
    register_configs()
    if GlobalHydra.instance().is_initialized():
        GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        return hydra_compose("config", overrides=list(overrides))
