"""When a pgrun run has solved CartPole: the first iteration at which >= `need` of its seeds have a
recent mean return >= the threshold, read from its metrics.csv (scripts/bench_peers.py, bench_solve.py).

A seed's recent mean return at iteration k is the mean of its per-iteration `return_mean` over the
last W iterations, W = max(10, ceil(100 / N)) with N episodes per iteration: at least the 10
iterations of summary.json's `seeds_solved_final` (W = 10 for the default N = 16) and at least the
100 episodes of Stable-Baselines3's logged `ep_rew_mean`, so that a smaller batch is not judged on
fewer episodes. Every episode of an iteration counts once, so the mean of the W iteration means is
the mean of the W·N episodes' returns.
"""

from __future__ import annotations

import csv
import json
import math
import os

import numpy as np

SOLVED = 475.0  # CartPole-v1's reward threshold (gymnasium's spec)


def window(episodes_per_iteration: int) -> int:
    """W: iterations in a seed's recent mean, max(10, ceil(100 / N))."""
    return max(10, math.ceil(100 / episodes_per_iteration))


def read_metrics(path: str) -> dict[str, np.ndarray]:
    """metrics.csv -> {"iteration": [K], "return": [K, S], "env_steps": [K, S], "wall_s": [K], "seeds": [S]}.

    `env_steps` is each seed's cumulative count; `wall_s` the run seconds when that iteration's
    chunk was written (one value per chunk of log_every iterations)."""
    ret: dict[int, dict[int, float]] = {}
    steps: dict[int, dict[int, float]] = {}
    wall: dict[int, float] = {}
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            it, seed = int(r["iteration"]), int(r["seed"])
            ret.setdefault(it, {})[seed] = float(r["return_mean"])
            steps.setdefault(it, {})[seed] = float(r["env_steps"])
            wall[it] = float(r["wall_s"])
    its = sorted(ret)
    seeds = sorted(ret[its[0]])
    return {"iteration": np.array(its), "seeds": np.array(seeds),
            "return": np.array([[ret[i][s] for s in seeds] for i in its]),
            "env_steps": np.array([[steps[i][s] for s in seeds] for i in its]),
            "wall_s": np.array([wall[i] for i in its])}


def recent_mean(returns: np.ndarray, w: int) -> np.ndarray:
    """[K, S] per-iteration mean returns -> [K, S] mean over the last w iterations (NaN for k < w - 1)."""
    c = np.cumsum(np.vstack([np.zeros((1, returns.shape[1])), returns]), axis=0)
    out = np.full(returns.shape, np.nan)
    out[w - 1:] = (c[w:] - c[:-w]) / w
    return out


def solved_at(m: dict[str, np.ndarray], episodes_per_iteration: int, need: int = 7,
              threshold: float = SOLVED) -> dict:
    """The first iteration with >= `need` seeds solved, and what it took.

    Returns {"iteration": k or None, "env_steps": mean over seeds of each seed's env steps up to k,
    "run_s": run seconds at the end of k's chunk (when the host can see it), "final_solved": seeds
    whose last-W mean at the end is >= threshold, "window": W}."""
    w = window(episodes_per_iteration)
    rm = recent_mean(m["return"], w)
    hits = np.nonzero(np.sum(rm >= threshold, axis=1) >= need)[0]
    out: dict = {"window": w, "final_solved": int(np.sum(rm[-1] >= threshold)), "iteration": None,
                 "env_steps": None, "run_s": None}
    if len(hits):
        k = int(hits[0])
        out.update(iteration=int(m["iteration"][k]), env_steps=float(m["env_steps"][k].mean()),
                   run_s=float(m["wall_s"][k]))
    return out


def episodes_per_iteration(run_dir: str) -> int:
    """N of the run in run_dir, from the config pgrun saved (.hydra/config.yaml)."""
    with open(os.path.join(run_dir, ".hydra", "config.yaml")) as f:
        return int(next(line.split(":")[1] for line in f if line.startswith("episodes_per_iteration:")))


def run_solved_at(run_dir: str, wall: float, need: int = 7) -> dict:
    """`solved_at` of the run in run_dir (its metrics.csv and its own N), plus "from_enter": seconds
    from Enter to the end of the chunk where >= `need` seeds were solved, for a command that took
    `wall` seconds (wall - summary.json's run_s + that chunk's wall_s; None if never solved)."""
    with open(os.path.join(run_dir, "summary.json")) as f:
        run_s = json.load(f)["run_s"]
    at = solved_at(read_metrics(os.path.join(run_dir, "metrics.csv")), episodes_per_iteration(run_dir), need)
    return {**at, "from_enter": None if at["iteration"] is None else wall - run_s + at["run_s"]}
