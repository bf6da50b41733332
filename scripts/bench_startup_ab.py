"""Start-up A/B (issue 14, goal 1): two pgrun checkouts side by side against `python -c "import jax"`.

    python scripts/bench_startup_ab.py --base /path/to/base/checkout [--new .] [--rounds 5]

Each round runs, alternating which checkout goes first: `import jax`, `pgrun --help`, `pgrun
estimator=nope`, `pgrun gamma=1.5` and a warm-cache 10-iteration default run (`estimator=baseline
env=CartPole iterations=10`, its start-up = wall - compile_s - run_s of its summary.json). Each
checkout is put first on PYTHONPATH and run by this interpreter's `pgrun` console script, with its
own compilation cache (filled by one run before the rounds). Prints the medians, their ratio to
`import jax` measured in the same rounds, and the load average before and after.

`--cold N` then runs the whole default command (`estimator=baseline env=CartPole`, 100 iterations)
N times per checkout, alternating, each with an empty compilation cache: medians of its wall,
compile_s, run_s and the time from Enter to >= 7/8 seeds solved (scripts/solved.py, as
bench_peers.py's `solve` section reads it), and whether the two checkouts' metrics.csv agree in
every column but wall_s.
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
from pathlib import Path

PY = sys.executable
PGRUN = str(Path(PY).with_name("pgrun"))
RUN = ["estimator=baseline", "env=CartPole", "iterations=10", "progress=false"]
COMMANDS = {"help": ["--help"], "bad_group": ["estimator=nope"], "bad_value": ["gamma=1.5"]}


def timed(cmd: list[str], env: dict, expect: int = 0) -> float:
    t0 = time.perf_counter()
    p = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if p.returncode != expect:
        raise RuntimeError(f"{' '.join(cmd)} exited {p.returncode}, not {expect}:\n{p.stderr[-2000:]}")
    return wall


def run(env: dict, out: str) -> tuple[float, float]:
    """(wall, wall - compile_s - run_s) of the 10-iteration run."""
    wall = timed([PGRUN, *RUN, f"hydra.run.dir={out}"], env)
    s = json.loads((Path(out) / "summary.json").read_text())
    return wall, wall - s["compile_s"] - s["run_s"]


def cold_default(env: dict, out: str) -> dict:
    """The default command with the empty cache `env` points to: wall, compile_s, run_s, time to 7/8."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from solved import run_solved_at

    wall = timed([PGRUN, "estimator=baseline", "env=CartPole", "progress=false", f"hydra.run.dir={out}"], env)
    s = json.loads((Path(out) / "summary.json").read_text())
    solved = run_solved_at(out, wall)["from_enter"]
    return {"wall": wall, "compile": s["compile_s"], "run": s["run_s"], "solved": solved}


def metrics_without_wall(out: str) -> list[list[str]]:
    import csv

    with open(os.path.join(out, "metrics.csv"), newline="") as f:
        rows = list(csv.reader(f))
    drop = rows[0].index("wall_s")
    return [[c for i, c in enumerate(r) if i != drop] for r in rows]


def cold_rounds(sides: dict, tmp: str, n: int) -> None:
    t: dict[str, list[float]] = {}
    outs = {}
    for r in range(n):
        for name in (["base", "new"] if r % 2 == 0 else ["new", "base"]):
            env = dict(sides[name], PGRUN_CACHE_DIR=os.path.join(tmp, f"cold-cache-{name}-{r}"))
            outs[name] = os.path.join(tmp, f"cold-{name}-{r}")
            for k, v in cold_default(env, outs[name]).items():
                t.setdefault(f"{k} {name}", []).append(float("nan") if v is None else v)
        print(f"cold round {r + 1}: " + ", ".join(f"{k} {v[-1]:.2f}" for k, v in t.items()), flush=True)
    med = {k: statistics.median(v) for k, v in t.items()}
    same = metrics_without_wall(outs["base"]) == metrics_without_wall(outs["new"])
    print(f"\ndefault command, empty cache, {n} runs each, medians (metrics.csv but wall_s identical: {same})")
    print(f"{'figure':<16}{'base':>9}{'new':>9}{'new/base':>10}")
    for key in ("wall", "compile", "run", "solved"):
        b, v = med[f"{key} base"], med[f"{key} new"]
        print(f"{key:<16}{b:>8.2f}s{v:>8.2f}s{v / b:>9.2f}x")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", required=True, help="the base checkout (a git worktree)")
    ap.add_argument("--new", default=str(Path(__file__).resolve().parents[1]), help="the checkout under test")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--runs-only", action="store_true", help="time only the 10-iteration runs (and import jax)")
    ap.add_argument("--cold", type=int, default=0, help="then N cold default commands per checkout, alternating")
    args = ap.parse_args()
    commands = {} if args.runs_only else COMMANDS
    tmp = tempfile.mkdtemp(prefix="pgrun-startup-ab-")
    sides = {}
    for name, root in (("base", args.base), ("new", args.new)):
        env = dict(os.environ, PYTHONPATH=str(Path(root).resolve()), PGRUN_CACHE_DIR=os.path.join(tmp, f"cache-{name}"))
        env.pop("JAX_DEFAULT_PRNG_IMPL", None)
        run(env, os.path.join(tmp, f"warm-{name}"))  # fill the cache
        sides[name] = env
    t: dict[str, list[float]] = {"jax": []}
    load0 = os.getloadavg()
    for r in range(args.rounds):
        order = ["base", "new"] if r % 2 == 0 else ["new", "base"]
        t["jax"].append(timed([PY, "-c", "import jax"], sides["base"]))
        for key, cmd in commands.items():
            for name in order:
                t.setdefault(f"{key} {name}", []).append(timed([PGRUN, *cmd], sides[name], 0 if key == "help" else 2))
        t["jax"].append(timed([PY, "-c", "import jax"], sides["base"]))
        for name in order:
            wall, rest = run(sides[name], os.path.join(tmp, f"run-{name}-{r}"))
            t.setdefault(f"run wall {name}", []).append(wall)
            t.setdefault(f"run start-up {name}", []).append(rest)
        print(f"round {r + 1}: " + ", ".join(f"{k} {v[-1]:.2f}" for k, v in t.items()), flush=True)
    load1 = os.getloadavg()
    med = {k: statistics.median(v) for k, v in t.items()}
    print(f"\nload average (1, 5, 15 min) before {load0[0]:.1f} {load0[1]:.1f} {load0[2]:.1f}, after "
          f"{load1[0]:.1f} {load1[1]:.1f} {load1[2]:.1f}; {args.rounds} rounds, medians")
    print(f"import jax: {med['jax']:.2f} s")
    print(f"{'figure':<16}{'base':>9}{'/jax':>7}{'new':>9}{'/jax':>7}{'new/base':>10}")
    for key in [*commands, "run start-up", "run wall"]:
        b, n = med[f"{key} base"], med[f"{key} new"]
        print(f"{key:<16}{b:>8.2f}s{b / med['jax']:>6.2f}x{n:>8.2f}s{n / med['jax']:>6.2f}x{n / b:>9.2f}x")
    if args.cold:
        cold_rounds(sides, tmp, args.cold)


if __name__ == "__main__":
    main()
