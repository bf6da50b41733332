"""Every check a run makes before it starts, writing nothing: `pgrun` runs it on the command
line before Hydra makes the run directory, so a refused command leaves nothing on disk."""

from __future__ import annotations

import os

from omegaconf import DictConfig

from pgrun.config import Config, load
from pgrun.errors import ConfigError
from pgrun.runner.rundir import check_resume_config, resume_config


def accept(cfg: DictConfig, overrides: list[str]) -> Config:
    """The validated Config a job of the composed `cfg` would run (resume=: the run's own config
    with the command line's resumable `overrides`), after the checks that need the env (action
    space, feature map, time limit; env=gym:<id> installed and makeable). ConfigError otherwise.

    JAX is imported only after the checks that need none (`load`): a bad value is refused without it."""
    if cfg.get("resume"):
        cfg = resume_config(cfg, overrides)
    config = load(cfg)
    if config.resume:
        from pgrun.runner.checkpoint import read_meta

        run_dir = str(config.resume)
        if not os.path.isfile(os.path.join(run_dir, "metrics.csv")):
            raise ConfigError(f"resume={run_dir}: not a pgrun run directory (no metrics.csv there).")
        check_resume_config(config, read_meta(run_dir)["config"])
    from pgrun.train.build import build  # JAX, flax, the envs: after the checks above

    build(config)
    return config
