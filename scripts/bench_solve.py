"""Sample efficiency of settings of the default command on CartPole: env steps and run seconds until
>= 7/8 seeds are solved, over several seed blocks (issue 14, goal 3; docs/benchmarks.md).

Each setting is a string of overrides added to `pgrun estimator=baseline env=CartPole`; it runs once
per seed block (`seed=<b> num_seeds=8`) with one persistent compilation cache shared by all runs, so
the first block of a setting compiles and the others start warm. Solved: scripts/solved.py (a seed's
mean return over its last max(10, ceil(100/N)) iterations >= 475; the first iteration with >= 7 such
seeds). Per setting and block it reads that iteration, the env steps per seed up to it (mean over
the 8 seeds), the run seconds at the end of its chunk (metrics.csv's wall_s: what the host has seen;
start-up and compile excluded), the seeds solved at the end of the run, and the run's whole wall.

Usage:
    python scripts/bench_solve.py "" "episodes_per_iteration=8 optimizer.lr=0.01" ... [--blocks 0,8,16]
        [--cache DIR] [--keep DIR]
("" is the default command itself.)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
from solved import run_solved_at  # noqa: E402  (scripts/ on the path first)

PGRUN = os.path.join(os.path.dirname(sys.executable), "pgrun")


def run(setting: str, block: int, cache: str, out: str) -> dict:
    """One `pgrun` run of `setting` on seeds block .. block+7; its solve figures and wall seconds."""
    cmd = [PGRUN, "estimator=baseline", "env=CartPole", *setting.split(), f"seed={block}", "num_seeds=8",
           "progress=false", f"hydra.run.dir={out}"]
    env = dict(os.environ, PGRUN_CACHE_DIR=cache, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    t0 = time.perf_counter()
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {p.returncode}:\n{p.stderr[-2000:]}")
    with open(os.path.join(out, "summary.json")) as f:
        s = json.load(f)
    at = run_solved_at(out, wall)
    return {**at, "wall": wall, "compile_s": s["compile_s"], "total_run_s": s["run_s"],
            "total_env_steps": s["env_steps"] / 8}


def fmt(x, digits: int = 0) -> str:
    return "-" if x is None else f"{x:,.{digits}f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("settings", nargs="+", help='overrides per setting, e.g. "episodes_per_iteration=8"')
    ap.add_argument("--blocks", default="0,8,16", help="first seeds of the 8-seed blocks")
    ap.add_argument("--cache", default=None, help="PGRUN_CACHE_DIR shared by all runs (default: a fresh one)")
    ap.add_argument("--keep", default=None, help="write the run directories here (default: a temporary dir)")
    args = ap.parse_args()
    blocks = [int(b) for b in args.blocks.split(",")]
    print(f"bench_solve {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; load average "
          f"{', '.join(f'{x:.1f}' for x in os.getloadavg())}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        cache = args.cache or os.path.join(tmp, "cache")
        keep = args.keep or tmp
        table = []
        for i, setting in enumerate(args.settings):
            res = []
            for b in blocks:
                r = run(setting, b, cache, os.path.join(keep, f"s{i}-b{b}"))
                res.append(r)
                print(f"  [{setting or 'default'}] seed={b}: 7/8 at iteration {r['iteration']}, "
                      f"{fmt(r['env_steps'])} env steps/seed, {fmt(r['run_s'], 2)} s of run; "
                      f"final {r['final_solved']}/8; run {r['total_run_s']:.2f} s "
                      f"({r['total_env_steps']:,.0f} steps/seed), compile {r['compile_s']:.2f} s, "
                      f"wall {r['wall']:.2f} s", flush=True)
            table.append((setting, res))
        print("\n| setting | iteration to 7/8 (per block) | env steps/seed to 7/8 (per block) | run s to 7/8 "
              "(per block) | seeds solved at the end (per block) | whole run s, warm wall s (median) |")
        print("|---|---|---|---|---|---|")
        for setting, res in table:
            def per(key, digits=0, res=res):
                return " / ".join(fmt(r[key], digits) for r in res)
            warm = [r["wall"] for r in res[1:]] or [res[0]["wall"]]
            print(f"| `{setting or 'default'}` | {per('iteration')} | {per('env_steps')} | {per('run_s', 2)} | "
                  f"{per('final_solved')} | {statistics.median(r['total_run_s'] for r in res):.2f}, "
                  f"{statistics.median(warm):.2f} |", flush=True)
    print(f"(blocks {args.blocks}; load average at the end {', '.join(f'{x:.1f}' for x in os.getloadavg())})")


if __name__ == "__main__":
    main()
