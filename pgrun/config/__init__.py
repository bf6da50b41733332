"""The config layer: typed schemas (`schema`), the one validation (`validate`), `load` from a
composed DictConfig to a `Config`, and in-process composing (`compose`). Above `core`, whose
valid choices it checks; below everything that runs."""

from pgrun.config.compose import compose, config_dir
from pgrun.config.loader import load
from pgrun.config.schema import Config, EvalConfig, register_configs

__all__ = ["Config", "EvalConfig", "compose", "config_dir", "load", "register_configs"]
