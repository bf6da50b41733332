"""`load`: the one way from a composed (or stored) config to a validated, typed `Config`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from omegaconf import DictConfig, OmegaConf

from pgrun.config.schema import Config
from pgrun.config.validate import validate


def load(cfg: DictConfig | Mapping[str, Any]) -> Config:
    """The `Config` dataclass of `cfg`, validated once (ConfigError names the bad key).

    cfg: Hydra's composed `DictConfig`, or a plain dict such as the config stored in a
    checkpoint or summary.json; either is merged onto the schema, so both come out typed.
    """
    node = OmegaConf.merge(OmegaConf.structured(Config), cfg)
    config = OmegaConf.to_object(node)
    assert isinstance(config, Config)
    validate(config)
    return config
