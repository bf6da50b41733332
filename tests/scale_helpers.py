"""Helpers for the sweep / checkpoint / eval tests: tiny configs composed like the CLI's."""

from __future__ import annotations

import csv
import os
import subprocess
import sys

from helpers import ROOT as REPO
from helpers import compose_config, make_config
from omegaconf import DictConfig

from pgrun.config import Config

ROOT = str(REPO)
# Bandit episodes are one step long: these runs compile and train in seconds.
TINY = ["env=Bandit", "policy=softmax_linear", "estimator=reward_to_go", "num_seeds=2", "iterations=6",
        "episodes_per_iteration=4", "log_every=2", "progress=false"]


def config(*overrides: str) -> Config:
    """The loaded config of `pgrun TINY... overrides...` (ConfigError if it cannot run)."""
    return make_config(*TINY, *overrides)


def composed(*overrides: str) -> DictConfig:
    """The composed, not yet loaded, config of `pgrun TINY... overrides...` (what resume starts from)."""
    return compose_config(*TINY, *overrides)


def read_rows(path: str) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def without(rows: list[dict], *cols: str) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in cols} for r in rows]


def pgrun(*args: str, env: dict | None = None, timeout: float = 240, **kw) -> subprocess.CompletedProcess:
    """`python -m pgrun.cli args...` from this checkout in a subprocess."""
    e = {**os.environ, "PYTHONPATH": ROOT, **(env or {})}
    return subprocess.run([sys.executable, "-m", "pgrun.cli", *args], cwd=ROOT, env=e, capture_output=True,
                          text=True, timeout=timeout, **kw)
