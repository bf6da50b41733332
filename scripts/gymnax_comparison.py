#!/usr/bin/env python
"""The closing comparison of issue 16 (docs/compare.md): five estimators × four bsuite envs ×
8 vmapped seeds, then pgrun-compare over all of it. Needs the gymnax extra:

    python3 -m venv .venv-gymnax && .venv-gymnax/bin/pip install -e ".[gymnax]"
    .venv-gymnax/bin/python scripts/gymnax_comparison.py [--root runs/gymnax_comparison] [--dry-run]

One Hydra multirun per env (ENVS), sweeping ESTIMATORS with the shipped defaults of each
estimator (the optimizer included) and the MLP policy, all runs pinned to SETTINGS. The
episode-based estimators sample 16 whole episodes per update; ppo (rollout=steps) gets
num_envs=16 × num_steps=T, T the env's episode length, so every estimator sees the same env
steps per update (DiscountingChain never terminates: T is its time limit). Writes
<root>/runs/<env>/<job> and <root>/compare/ (figures, compare.json, compare.md, report.html,
tidy.csv), and prints every command with its wall time.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

ESTIMATORS = ("reinforce", "reward_to_go", "baseline", "actor_critic", "ppo")
# gymnax id -> episode length T with default params (DeepSea size 8; UmbrellaChain chain_length 10;
# Catch: the ball falls 9 rows; DiscountingChain: no termination, time limit 100)
ENVS = {"DeepSea-bsuite": 8, "UmbrellaChain-bsuite": 10, "Catch-bsuite": 9, "DiscountingChain-bsuite": 100}
SETTINGS = ("policy=mlp", "num_seeds=8", "seed=0", "iterations=200", "episodes_per_iteration=16", "gamma=0.99",
            "num_envs=16", "progress=false")


def commands(root: str) -> list[list[str]]:
    """The pgrun multirun per env, then pgrun-compare (as `python -m` of this interpreter)."""
    py = [sys.executable, "-m"]
    out = [py + ["pgrun.cli", "-m", f"estimator={','.join(ESTIMATORS)}", f"env=gymnax:{gid}", *SETTINGS,
                 f"num_steps={T}", f"hydra.sweep.dir={root}/runs/{gid}"] for gid, T in ENVS.items()]
    cmp = f"{root}/compare"
    out.append(py + ["pgrun.report.compare", f"{root}/runs", "--out", cmp, "--html", f"{cmp}/report.html",
                     "--tidy", f"{cmp}/tidy.csv"])
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--root", default="runs/gymnax_comparison")
    p.add_argument("--dry-run", action="store_true", help="print the commands only")
    a = p.parse_args()
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    total = time.time()
    for cmd in commands(a.root):
        print("$", shlex.join(cmd), flush=True)
        if a.dry_run:
            continue
        t0 = time.time()
        subprocess.run(cmd, check=True, env=env)
        print(f"# {time.time() - t0:.0f} s wall", flush=True)
    if not a.dry_run:
        print(f"# total {time.time() - total:.0f} s wall", flush=True)


if __name__ == "__main__":
    main()
