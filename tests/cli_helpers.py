"""Running `pgrun` (and `pgrun-eval`) in a subprocess from any working directory, optionally with
some packages made unimportable (tests/cli/block_imports/sitecustomize.py), as a user without
that optional extra would have it."""

from __future__ import annotations

import os
import subprocess
import sys

from helpers import ROOT

BLOCK_DIR = str(ROOT / "tests" / "cli" / "block_imports")
# Bandit episodes are one step long: a run compiles and trains in seconds
TINY = ["env=Bandit", "policy=softmax_linear", "estimator=reward_to_go", "num_seeds=2", "iterations=2",
        "episodes_per_iteration=4", "log_every=2", "progress=false"]


def run_cli(*args: str, cwd: str | os.PathLike = ROOT, block: tuple[str, ...] = (), module: str = "pgrun.cli",
            timeout: float = 300, env: dict | None = None) -> subprocess.CompletedProcess:
    """`python -m <module> args...` of this checkout in `cwd`; the modules in `block` cannot be imported."""
    path = [BLOCK_DIR] if block else []
    e = {**os.environ, "PYTHONPATH": os.pathsep.join([*path, str(ROOT)]), "PGRUN_BLOCK_IMPORTS": ",".join(block),
         **(env or {})}
    e.pop("HYDRA_FULL_ERROR", None)
    cmd = [sys.executable, "-m", module] if module else [sys.executable]
    return subprocess.run([*cmd, *args], cwd=cwd, env=e, capture_output=True, text=True,
                          timeout=timeout)


def tree(root: str | os.PathLike) -> list[str]:
    """Every path under root, relative, sorted (directories included)."""
    out = []
    for d, dirs, files in os.walk(root):
        out += [os.path.relpath(os.path.join(d, n), root) for n in dirs + files]
    return sorted(out)
