"""Helpers for the sweep / checkpoint / eval tests: tiny configs composed like the CLI's."""

from __future__ import annotations

import csv
import os
import subprocess
import sys

from hydra import compose, initialize_config_dir

from pgrun.cli import CONFIG_DIR
from pgrun.run import enable_compilation_cache

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Bandit episodes are one step long: these runs compile and train in seconds.
TINY = ["env=Bandit", "policy=softmax_linear", "estimator=reward_to_go", "num_seeds=2", "iterations=6",
        "episodes_per_iteration=4", "log_every=2", "progress=false"]


def config(*overrides: str):
    """The composed config of `pgrun TINY... overrides...`."""
    enable_compilation_cache()
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return compose(config_name="config", overrides=[*TINY, *overrides])


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
