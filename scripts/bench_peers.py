"""pgrun against its peers and against `import jax`, side by side in one run (issue 14's goals).

Every figure is printed as a ratio with the absolute numbers beside it, pgrun and the reference
measured alternately in this one script run, so that load from other processes hits both alike.
Absolute seconds differ a lot between machines (and on a shared, loaded machine between minutes);
the ratios are the figures to compare.

Sections (`--only a,b,...`; all by default):
  startup     `pgrun --help`, two config errors (a bad group option, refused before composing; a
              bad value, refused by validation after composing) and the start-up of a 10-iteration
              run (wall - compile_s - run_s, both from its summary.json; warm cache) vs
              `python -c "import jax"` (the same interpreter). Medians over --reps alternations.
  compile     every estimator's cold compile (an empty persistent cache: PGRUN_CACHE_DIR, which
              pgrun.runner.cache.enable_compilation_cache reads) and warm compile (a second run,
              same cache) of `estimator=<e> env=CartPole iterations=10`.
  ppo         pgrun PPO's compile vs rejax 0.1.3's PPO compile at the same settings, then
              steady-state env-steps/s of both (scripts/bench_ppo.py's protocol and classes:
              16 seeds x 131072 steps, 16 envs x 128 steps, 4 epochs x 4 minibatches).
  solve       the default command `pgrun estimator=baseline env=CartPole` (8 seeds, empty cache,
              start-up included; each `--pgrun-solve "k=v ..."` also runs it with those overrides, by
              default `+experiment=cartpole_fast`, the preset that needs the fewest env steps)
              until >= 7/8 seeds are solved vs Stable-Baselines3 A2C (its defaults,
              `make_vec_env("CartPole-v1", n_envs=8)`, torch on CPU) on each of `--sb3-seeds` (0-7)
              until that seed is solved or `--sb3-budget` steps (500k: the RL-Zoo's tuned
              CartPole-v1 entry is A2C's defaults with 8 envs and 500k steps; A2C's constant lr
              makes the first 100k steps those of the goal's 100k run, so both are read off one run). pgrun's
              runs (each with an empty cache) come before every other SB3 seed. The goal's ratio:
              pgrun's median time over SB3's median time to solve over the seeds that solve within
              100k steps (how many is printed), then over those solved within a larger budget.
              Solved: pgrun, scripts/solved.py (a seed's mean return over its last max(10,
              ceil(100/N)) iterations >= 475, N episodes per iteration: 10 iterations for N = 16,
              summary.json's `seeds_solved_final`), read at the end of each chunk (when metrics.csv
              gets the rows; time = wall - run_s + that chunk's wall_s); SB3, the mean return of its
              last 100 episodes (its `ep_info_buffer`, logged as rollout/ep_rew_mean) >= 475,
              checked after every step (training stops there); time from process start (torch
              import included). torch runs on `--sb3-threads` threads (1; torch's default, one per
              core, made A2C's small updates 20-30x slower on a loaded 2-core machine, its threads
              spin-waiting; 0 keeps torch's default).
  throughput  the default 64x64 MLP training's valid env-steps/s in steady state vs gymnasium's
              NumPy CartPole-v1 vector env stepping a random policy in this same process
              (scripts/bench.py's functions).
  floor       what no change to pgrun's own code can beat: `python -c "import jax, flax.linen, optax,
              gymnasium, hydra, omegaconf"` (the run's libraries) and one Hydra compose of the default
              config, each over `import jax` (goal 1's floor); scripts/compile_floor.py: pgrun's default
              chunk and the smallest program doing the same work (PureJaxRL-style), each compiled cold
              in a fresh process, and the latter's compile over pgrun's run time (goal 2's floor).
  flops       achieved FLOP/s of the default training program (XLA's cost analysis of the compiled
              chunk, `jax.jit(...).lower(...).compile().cost_analysis()`, over its measured time)
              as a fraction of this machine's dense float32 matmul peak (jnp.dot of two n x n
              matrices, best of several), both measured here.

The peers live in their own virtual environments (their pins conflict with pgrun's), created
here when missing (`--peers-dir`, default /tmp/pgrun-peers):
    <dir>/rejax: pip install rejax==0.1.3 "gymnax<1.0"
    <dir>/sb3:   pip install torch==2.13.0 stable-baselines3
torch is pinned to 2.13.0 because this project's machines carry a local CPU wheel of exactly that
version (found through pip's find-links); an unpinned `torch` would download the multi-GB CUDA
build from PyPI. Elsewhere, add `--index-url https://download.pytorch.org/whl/cpu` by hand.

Usage:
    python scripts/bench_peers.py [--only startup,compile,ppo,solve,throughput,flops] [--quick]
        [--reps 5] [--peers-dir /tmp/pgrun-peers] [--rejax-python P] [--sb3-python P]
        [--sb3-seeds 0-7] [--sb3-budget 500000] [--sb3-threads 1] [--pgrun-solve "k=v ..."]...
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPTS = os.path.join(ROOT, "scripts")
sys.path.insert(0, ROOT)  # this checkout's pgrun
sys.path.insert(1, SCRIPTS)  # bench.py, bench_ppo.py, solved.py
PY = sys.executable
PGRUN = os.path.join(os.path.dirname(PY), "pgrun")
ENV = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
from solved import SOLVED  # noqa: E402  (scripts/ on the path first)

SECTIONS = ("startup", "compile", "ppo", "solve", "throughput", "floor", "flops")
ROWS: list[tuple[str, str, str, str, str]] = []  # (figure, pgrun, reference, ratio, goal)


def row(figure: str, ours: float | None, ref: float | None, unit: str, goal: str, ratio: float | None = None) -> None:
    if ratio is None and ours is not None and ref:
        ratio = ours / ref
    digits = 2 if unit in ("s", "GFLOP/s") else 0

    def fmt(v: float | None) -> str:
        return "-" if v is None else f"{v:,.{digits}f} {unit}"

    ROWS.append((figure, fmt(ours), fmt(ref), "-" if ratio is None else f"{ratio:.3g}x", goal))
    print(f"  -> {figure}: {fmt(ours)} vs {fmt(ref)} = {ROWS[-1][3]} (goal {goal})", flush=True)


# ----------------------------------------------------------------------------- peers' venvs


def ensure_venv(path: str, packages: list[str]) -> str:
    """`<path>/bin/python`, creating the venv and installing `packages` when it is missing."""
    python = os.path.join(path, "bin", "python")
    if os.path.exists(python):
        return python
    print(f"creating {path}: pip install {' '.join(packages)} (a few minutes)", flush=True)
    base = getattr(sys, "_base_executable", sys.executable)  # the interpreter under this venv
    subprocess.run([base, "-m", "venv", path], check=True)
    subprocess.run([python, "-m", "pip", "install", "-q", *packages], check=True)
    return python


def rejax_python(args) -> str:
    return args.rejax_python or ensure_venv(os.path.join(args.peers_dir, "rejax"), ["rejax==0.1.3", "gymnax<1.0"])


def sb3_python(args) -> str:
    # torch==2.13.0: the local CPU wheel here; a plain `torch` downloads the multi-GB CUDA build
    return args.sb3_python or ensure_venv(os.path.join(args.peers_dir, "sb3"), ["torch==2.13.0", "stable-baselines3"])


# ----------------------------------------------------------------------------- subprocess timing


def timed(cmd: list[str], env: dict | None = None, expect: int = 0) -> float:
    t0 = time.perf_counter()
    p = subprocess.run(cmd, env=env or ENV, capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - t0
    if p.returncode != expect:
        raise RuntimeError(f"{' '.join(cmd)} exited {p.returncode} (expected {expect}):\n{p.stderr[-2000:]}")
    return wall


def pgrun_run(cache: str, out: str, *overrides: str) -> tuple[float, dict]:
    """(wall seconds, summary.json) of one `pgrun` command with PGRUN_CACHE_DIR=cache."""
    wall = timed([PGRUN, *overrides, f"hydra.run.dir={out}", "progress=false"], dict(ENV, PGRUN_CACHE_DIR=cache))
    with open(os.path.join(out, "summary.json")) as f:
        return wall, json.load(f)


# ----------------------------------------------------------------------------- sections


def startup(args, tmp: str) -> None:
    print("== start-up (medians over alternations; warm cache for the 10-iteration run)", flush=True)
    cache = os.path.join(tmp, "startup-cache")
    run = ["estimator=baseline", "env=CartPole", "iterations=10"]
    pgrun_run(cache, os.path.join(tmp, "warmup"), *run)  # fill the cache: compile is subtracted anyway
    t: dict[str, list[float]] = {k: [] for k in ("jax", "help", "bad_group", "bad_value", "run_rest", "run_wall")}
    for r in range(args.reps):
        t["jax"].append(timed([PY, "-c", "import jax"]))
        t["help"].append(timed([PGRUN, "--help"]))
        t["jax"].append(timed([PY, "-c", "import jax"]))
        t["bad_group"].append(timed([PGRUN, "estimator=nope"], expect=2))
        t["bad_value"].append(timed([PGRUN, "gamma=1.5"], expect=2))
        wall, s = pgrun_run(cache, os.path.join(tmp, f"startup{r}"), *run)
        t["run_wall"].append(wall)
        t["run_rest"].append(wall - s["compile_s"] - s["run_s"])
        print(f"  round {r + 1}: import jax {t['jax'][-1]:.2f}s, --help {t['help'][-1]:.2f}s, "
              f"estimator=nope {t['bad_group'][-1]:.2f}s, gamma=1.5 {t['bad_value'][-1]:.2f}s, 10-it run wall "
              f"{wall:.2f}s (compile {s['compile_s']:.2f}, run {s['run_s']:.2f}, rest {t['run_rest'][-1]:.2f})",
              flush=True)
    med = {k: statistics.median(v) for k, v in t.items()}
    row("start-up of a 10-iteration run (wall - compile - run) / import jax", med["run_rest"], med["jax"], "s",
        "<= 1.3x")
    row("pgrun --help / import jax", med["help"], med["jax"], "s", "<= 1.3x")
    row("config error, bad group option (estimator=nope) / import jax", med["bad_group"], med["jax"], "s", "<= 1.3x")
    row("config error, bad value (gamma=1.5) / import jax", med["bad_value"], med["jax"], "s", "<= 1.3x")


def estimators(quick: bool) -> list[str]:
    if quick:
        return ["reinforce", "baseline", "ppo", "trpo"]
    return sorted(f[:-5] for f in os.listdir(os.path.join(ROOT, "configs", "estimator")) if f.endswith(".yaml"))


def compile_section(args, tmp: str) -> None:
    print("== compile: every estimator, env=CartPole iterations=10, empty cache then the same cache", flush=True)
    print(f"  {'estimator':<18}{'cold compile':>13}{'warm compile':>13}{'warm/cold':>10}{'run':>8}{'cold wall':>10}",
          flush=True)
    for est in estimators(args.quick):
        cache = os.path.join(tmp, f"cache-{est}")
        try:
            w1, s1 = pgrun_run(cache, os.path.join(tmp, f"c-{est}-1"), f"estimator={est}", "env=CartPole",
                               "iterations=10")
            _, s2 = pgrun_run(cache, os.path.join(tmp, f"c-{est}-2"), f"estimator={est}", "env=CartPole",
                              "iterations=10")
        except RuntimeError as e:
            print(f"  {est:<18} failed: {str(e).splitlines()[-1]}", flush=True)
            continue
        c1, c2 = s1["compile_s"], s2["compile_s"]
        print(f"  {est:<18}{c1:>12.2f}s{c2:>12.2f}s{c2 / c1:>9.2f}x{s1['run_s']:>7.2f}s{w1:>9.2f}s", flush=True)
        row(f"{est}: warm compile / cold compile", c2, c1, "s", "<= 0.2x")


def ppo_section(args) -> None:
    import bench_ppo

    print("== PPO vs rejax (scripts/bench_ppo.py's settings and protocol)", flush=True)
    rj_py = rejax_python(args)
    pg = bench_ppo.PgrunSide()
    print(f"  pgrun compile {pg.compile_s:.2f}s", flush=True)
    rj = bench_ppo.RejaxSide(rj_py, "default")
    print(f"  rejax compile {rj.compile_s:.2f}s (jax {rj.info['jax']}, prng {rj.info['prng']})", flush=True)
    row("PPO cold compile, pgrun / rejax", pg.compile_s, rj.compile_s, "s", "<= 0.5x")
    sps: dict[str, list[float]] = {"pgrun": [], "rejax": []}
    for r in range(1, (1 if args.quick else 3) + 1):
        for side, obj in (("pgrun", pg), ("rejax", rj)):
            x = obj.run(r)
            sps[side].append(x["steps"] / x["seconds"])
        print(f"  round {r}: pgrun {sps['pgrun'][-1]:,.0f} steps/s, rejax {sps['rejax'][-1]:,.0f} steps/s", flush=True)
    rj.close()
    row("PPO steady-state env-steps/s, pgrun / rejax", statistics.median(sps["pgrun"]),
        statistics.median(sps["rejax"]), "steps/s", ">= 1.5x")


SB3_WORKER = r"""
import json, sys, time
import numpy as np
import torch
from stable_baselines3 import A2C
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env

class Solved(BaseCallback):
    # stops training at the first step whose last-100-episode mean (ep_rew_mean) is >= solved; prints a
    # line at 100k steps (the goal's budget) and at the solve (the parent timestamps them)
    def _on_step(self):
        buf = self.model.ep_info_buffer
        mean = float(np.mean([e["r"] for e in buf])) if len(buf) else 0.0
        if self.num_timesteps == 100_000:
            print(json.dumps({"at": "100k", "last100": mean, "episodes": len(buf)}), flush=True)
        if len(buf) == buf.maxlen and mean >= %(solved)r:
            print(json.dumps({"at": "solved", "steps": int(self.num_timesteps)}), flush=True)
            return False
        return True

if %(threads)d > 0:
    torch.set_num_threads(%(threads)d)
# A2C's defaults (constant lr 7e-4, n_steps 5, RMSprop): the same run whatever the budget, up to it
env = make_vec_env("CartPole-v1", n_envs=8, seed=%(seed)d)
model = A2C("MlpPolicy", env, seed=%(seed)d, device="cpu", verbose=0)
model.learn(total_timesteps=%(budget)d, callback=Solved())
buf = model.ep_info_buffer
print(json.dumps({"at": "end", "steps": int(model.num_timesteps), "torch": torch.__version__,
                  "threads": torch.get_num_threads(), "last100": float(np.mean([e["r"] for e in buf]))}), flush=True)
"""


def sb3_solve(python: str, seed: int, budget: int, threads: int) -> dict:
    """SB3 A2C (defaults, 8 envs) on one seed until solved or `budget` steps; seconds from process start
    (interpreter and torch import included), as this process sees each of the worker's lines."""
    t0 = time.perf_counter()
    code = SB3_WORKER % {"solved": SOLVED, "seed": seed, "budget": budget, "threads": threads}
    p = subprocess.Popen([python, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd="/",
                         env=dict(os.environ, PYTHONPATH=""))
    out: dict = {"seed": seed, "solved_wall": None, "solved_steps": None}
    assert p.stdout is not None
    for line in p.stdout:
        d = json.loads(line)
        at = time.perf_counter() - t0
        if d["at"] == "100k":
            out.update(wall_100k=at, last100_100k=d["last100"])
        elif d["at"] == "solved":
            out.update(solved_wall=at, solved_steps=d["steps"])
        else:
            out.update(end_steps=d["steps"], torch=d["torch"], threads=d["threads"], last100_end=d["last100"])
    if p.wait() != 0:
        raise RuntimeError(f"SB3 worker failed: {p.stderr.read()[-2000:] if p.stderr else ''}")
    out["wall"] = time.perf_counter() - t0
    return out


def parse_seeds(text: str) -> list[int]:
    """"0-7" or "0,3,5" or "0-3,8" -> the seeds, in order."""
    seeds: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.strip().partition("-")
        seeds += list(range(int(lo), int(hi or lo) + 1))
    return seeds


def pgrun_solve(tmp: str, tag: str, overrides: list[str]) -> dict:
    """The default command (plus `overrides`) with an empty cache; time from Enter until >= 7/8 seeds are
    solved (scripts/solved.py's criterion), seen at the end of the chunk where it happened."""
    from solved import run_solved_at

    out = os.path.join(tmp, f"solve-{tag}")
    wall, s = pgrun_run(os.path.join(tmp, f"solve-cache-{tag}"), out, "estimator=baseline", "env=CartPole",
                        *overrides)
    at = run_solved_at(out, wall)
    return {"wall": wall, "compile_s": s["compile_s"], "run_s": s["run_s"], "solved_iteration": at["iteration"],
            "solved_steps": at["env_steps"], "solved_wall": at["from_enter"],
            "seeds_solved_final": s["seeds_solved_final"]}


def median_or_none(xs: list) -> float | None:
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def solve_section(args, tmp: str) -> None:
    print(f"== time to solve CartPole-v1 (solved: recent mean return >= {SOLVED:g}; see the module docstring)",
          flush=True)
    py = sb3_python(args)
    seeds = parse_seeds(args.sb3_seeds)
    budget = args.sb3_budget
    # the default command, then each --pgrun-solve setting (overrides added to it)
    settings = [[]] + [s.split() for s in args.pgrun_solve if s.strip()]
    pg: list[list[dict]] = [[] for _ in settings]
    sb = []
    for i, seed in enumerate(seeds):
        if i % 2 == 0:  # pgrun's settings before every other SB3 seed: both see the same load
            for j, overrides in enumerate(settings):
                r = pgrun_solve(tmp, f"{i}-{j}", overrides)
                pg[j].append(r)
                print(f"  pgrun {' '.join(['default command', *overrides])} (empty cache): wall {r['wall']:.2f}s, "
                      f"compile {r['compile_s']:.2f}s, run {r['run_s']:.2f}s; >= 7/8 seeds solved at iteration "
                      f"{r['solved_iteration']} ({r['solved_steps'] or 0:,.0f} env steps per seed) -> "
                      f"{'-' if r['solved_wall'] is None else round(r['solved_wall'], 2)}s after Enter; "
                      f"{r['seeds_solved_final']}/8 solved at the end", flush=True)
        d = sb3_solve(py, seed, budget, args.sb3_threads)
        sb.append(d)
        print(f"  SB3 A2C seed {seed} (torch {d.get('torch')}, {d.get('threads')} threads): "
              + (f"solved after {d['solved_steps']:,} steps, {d['solved_wall']:.2f}s after start"
                 if d["solved_steps"] is not None else f"not solved in {budget:,} steps")
              + (f"; 100k steps in {d['wall_100k']:.2f}s (last-100 mean there {d['last100_100k']:.1f})"
                 if "wall_100k" in d else "") + f"; last-100 mean at its end {d['last100_end']:.1f}", flush=True)
    print("\n  SB3 A2C per seed (defaults, 8 envs; the RL-Zoo's tuned CartPole-v1 entry is the same with "
          "500k steps)\n  | seed | steps to solve | seconds to solve | last-100 mean at 100k |")
    for d in sb:
        solved = d["solved_steps"] is not None
        print(f"  | {d['seed']} | {d['solved_steps'] if solved else f'not solved in {budget:,}'} | "
              f"{round(d['solved_wall'], 2) if solved else '-'} | "
              f"{d['last100_100k'] if 'last100_100k' in d else d['last100_end']:.1f} |", flush=True)
    in100k = [d for d in sb if d["solved_steps"] is not None and d["solved_steps"] <= 100_000]
    inbudget = [d for d in sb if d["solved_steps"] is not None]
    print(f"  SB3 A2C solved {len(in100k)}/{len(sb)} seeds in 100k steps"
          + (f", {len(inbudget)}/{len(sb)} in {budget:,}" if budget > 100_000 else ""), flush=True)
    sb_100k = median_or_none([d["solved_wall"] for d in in100k])
    sb_budget = median_or_none([d["solved_wall"] for d in inbudget])
    walls = [d["wall_100k"] for d in sb if "wall_100k" in d]
    for overrides, runs in zip(settings, pg):
        name = "pgrun " + " ".join(["default", *overrides])
        pg_wall = median_or_none([r["solved_wall"] for r in runs])
        if not overrides:
            row(f"default command cold compile / its run time (median of {len(runs)})",
                median_or_none([r["compile_s"] for r in runs]), median_or_none([r["run_s"] for r in runs]), "s",
                "<= 0.5x")
        row(f"time to >= 7/8 seeds solved, {name} (median of {len(runs)} cold runs) / SB3 A2C median time to "
            f"solve over the {len(in100k)}/{len(sb)} seeds solved in 100k steps", pg_wall, sb_100k, "s", "<= 0.3x")
        if budget > 100_000:
            row(f"... / SB3 A2C, RL-Zoo tuned CartPole-v1 (defaults, {budget:,} steps): median over the "
                f"{len(inbudget)}/{len(sb)} seeds solved", pg_wall, sb_budget, "s", "<= 0.3x")
        row(f"env steps per seed to >= 7/8 solved, {name} / SB3 A2C median over the {len(inbudget)}/{len(sb)} "
            f"seeds solved in {budget:,}", median_or_none([r["solved_steps"] for r in runs]),
            median_or_none([d["solved_steps"] for d in inbudget]), "steps", "report")
        if walls:
            row(f"... / SB3 A2C's 100k steps, median over the {len(walls)} seeds that ran them", pg_wall,
                statistics.median(walls), "s", "report")


def throughput_section(args) -> None:
    from bench import gymnasium_reference, steady_throughput

    print("== steady-state throughput: default 64x64 MLP training vs gymnasium NumPy vector env, random policy",
          flush=True)
    ours, ref = [], []
    for r in range(1 if args.quick else 2):
        ours.append(steady_throughput(8, 2 if args.quick else 5)[0])
        ref.append(gymnasium_reference())
        print(f"  round {r + 1}: pgrun {ours[-1]:,.0f} valid env-steps/s, gymnasium {ref[-1]:,.0f} steps/s", flush=True)
    row("default MLP training env-steps/s / gymnasium random-policy stepping", statistics.median(ours),
        statistics.median(ref), "steps/s", ">= 14x")


LIBRARIES = "jax, flax.linen, optax, gymnasium, hydra, omegaconf"
COMPOSE = ("import time; from pgrun.config import compose; compose(['estimator=baseline', 'env=CartPole']); "
           "t = time.perf_counter(); compose(['estimator=baseline', 'env=CartPole']); print(time.perf_counter() - t)")


def floor_section(args, tmp: str) -> None:
    import compile_floor

    print("== floor: the libraries' imports, one compose, and the smallest program doing the default's work",
          flush=True)
    t: dict[str, list[float]] = {"jax": [], "libs": [], "compose": []}
    for _ in range(args.reps):
        t["jax"].append(timed([PY, "-c", "import jax"]))
        t["libs"].append(timed([PY, "-c", f"import {LIBRARIES}"]))
        p = subprocess.run([PY, "-c", COMPOSE], env=ENV, capture_output=True, text=True, cwd=ROOT, check=True)
        t["compose"].append(float(p.stdout.strip().splitlines()[-1]))
    med = {k: statistics.median(v) for k, v in t.items()}
    print(f"  import jax {med['jax']:.2f}s, import {LIBRARIES} {med['libs']:.2f}s, one compose "
          f"{med['compose']:.3f}s (medians of {args.reps})", flush=True)
    row(f"floor of goal 1: import {LIBRARIES} / import jax", med["libs"], med["jax"], "s", "report (<= 1.3x possible?)")
    row("floor of goal 1: those imports + one Hydra compose of the default config / import jax",
        med["libs"] + med["compose"], med["jax"], "s", "report (<= 1.3x possible?)")
    _, s = pgrun_run(os.path.join(tmp, "floor-cache"), os.path.join(tmp, "floor-default"), "estimator=baseline",
                     "env=CartPole")
    ours, small = (compile_floor.in_subprocess(w, 100) for w in ("pgrun", "minimal"))
    for m in (ours, small):
        print("  " + compile_floor.describe(m), flush=True)
    print(f"  pgrun default command (empty cache): compile {s['compile_s']:.2f}s, run {s['run_s']:.2f}s", flush=True)
    row("floor of goal 2: minimal program's cold compile / pgrun default command's run time", small["compile_s"],
        s["run_s"], "s", "report (<= 0.5x possible?)")
    row("pgrun's default chunk / the minimal program: cold compile (same harness)", ours["compile_s"],
        small["compile_s"], "s", "report")
    row("pgrun's default chunk / the minimal program: XLA kernels (fusions)", ours["fusions"], small["fusions"], "",
        "report")


def matmul_peak(n: int, reps: int) -> float:
    import jax
    import jax.numpy as jnp

    a = jax.random.normal(jax.random.PRNGKey(0), (n, n), jnp.float32)
    b = jax.random.normal(jax.random.PRNGKey(1), (n, n), jnp.float32)
    f = jax.jit(jnp.dot)
    jax.block_until_ready(f(a, b))
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        jax.block_until_ready(f(a, b))
        best = min(best, time.perf_counter() - t0)
    return 2.0 * n ** 3 / best


def flops_section(args) -> None:
    import jax

    from pgrun.config import compose, load
    from pgrun.train.program import init_seeds, make_train

    print("== achieved FLOP/s of the default training program vs this machine's float32 matmul peak", flush=True)
    cfg = load(compose(["num_seeds=8", "iterations=100000"]))
    tr = make_train(cfg)
    state = init_seeds(tr.init, jax.random.split(jax.random.PRNGKey(0), 8))
    compiled = jax.jit(jax.vmap(tr.chunk), donate_argnums=0).lower(state).compile()
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    flops = float(cost.get("flops", 0.0))
    for _ in range(2):  # learn a little first, as in a real run's later part
        state, _ = compiled(state)
    jax.block_until_ready(state)
    times = []
    for _ in range(1 if args.quick else 3):
        t0 = time.perf_counter()
        state, _ = compiled(state)
        jax.block_until_ready(state)
        times.append(time.perf_counter() - t0)
    dt = statistics.median(times)
    peak = matmul_peak(1024 if args.quick else 2048, 3 if args.quick else 10)
    slots = cfg.log_every * 8 * cfg.episodes_per_iteration * tr.max_steps
    print(f"  XLA cost analysis: {flops:.3e} FLOPs per chunk ({cfg.log_every} iterations x 8 seeds; "
          f"{flops / slots:,.0f} per env-step slot of {slots:,}); chunk {dt:.3f}s -> {flops / dt / 1e9:.2f} GFLOP/s",
          flush=True)
    print(f"  matmul peak (jnp.dot float32, best of reps): {peak / 1e9:.1f} GFLOP/s "
          f"({os.cpu_count()} CPUs visible)", flush=True)
    # rough analytic count: every step slot (padding included) runs the policy forward in the rollout
    # and forward + backward (~3 forwards) in the update: 4 x 2 x (sum of weight-matrix sizes) FLOPs
    weights = sum(x[0].size for x in jax.tree_util.tree_leaves(state.params) if x.ndim == 3)
    rough = slots * 4 * 2 * weights
    print(f"  rough analytic count: {rough:.3e} FLOPs per chunk ({4 * 2 * weights:,} per slot) -> "
          f"{rough / dt / 1e9:.2f} GFLOP/s = {rough / dt / peak:.3f} of the peak", flush=True)
    print("  caveat: XLA's HloCostAnalysis counts a while loop's body once, not once per trip, so a program "
          "made of lax.scan loops is under-counted; the fraction is a lower bound.", flush=True)
    row("achieved FLOP/s of the training chunk / dense matmul peak (lower bound)", flops / dt / 1e9, peak / 1e9,
        "GFLOP/s", "report")
    row("achieved FLOP/s of the training chunk / dense matmul peak (rough analytic count)", rough / dt / 1e9,
        peak / 1e9, "GFLOP/s", "report")


# ----------------------------------------------------------------------------- main


def machine() -> str:
    cpu = platform.processor() or "?"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    load = os.getloadavg() if hasattr(os, "getloadavg") else ("?",)
    return (f"{cpu}, {os.cpu_count()} CPUs, Python {platform.python_version()}, load average "
            f"{', '.join(f'{x:.1f}' for x in load)} at the start")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated subset of {', '.join(SECTIONS)}")
    ap.add_argument("--quick", action="store_true", help="fewer repetitions and 4 estimators: minutes, noisier")
    ap.add_argument("--reps", type=int, default=None, help="start-up alternations (default 5; --quick 2)")
    ap.add_argument("--peers-dir", default="/tmp/pgrun-peers")
    ap.add_argument("--rejax-python", default=None, help="an interpreter with rejax 0.1.3 (else made in --peers-dir)")
    ap.add_argument("--sb3-python", default=None, help="an interpreter with stable-baselines3 (else made there)")
    ap.add_argument("--sb3-seeds", default=None,
                    help="SB3 A2C's seeds, e.g. 0-7 or 0,2,5 (default 0-7; --quick 0-3)")
    ap.add_argument("--sb3-budget", type=int, default=None,
                    help="SB3 steps per seed, training stops at the solve (default 500000, the RL-Zoo's "
                         "n_timesteps for CartPole-v1; the seeds solved within 100k are counted too)")
    ap.add_argument("--sb3-threads", type=int, default=1,
                    help="torch threads of SB3 (default 1; 0: torch's default, one per core: 20-30x slower "
                         "on a loaded 2-core machine, its threads spin-wait)")
    ap.add_argument("--pgrun-solve", action="append", default=None,
                    help="`solve`: also run the default command with these overrides (repeatable; default "
                         '+experiment=cartpole_fast), e.g. "episodes_per_iteration=8"')
    args = ap.parse_args()
    args.reps = args.reps or (2 if args.quick else 5)
    args.pgrun_solve = ["+experiment=cartpole_fast"] if args.pgrun_solve is None else args.pgrun_solve
    args.sb3_seeds = args.sb3_seeds or ("0-3" if args.quick else "0-7")
    args.sb3_budget = args.sb3_budget or 500_000
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    bad = [s for s in only if s not in SECTIONS]
    if bad:
        ap.error(f"--only: unknown section(s) {', '.join(bad)}; valid: {', '.join(SECTIONS)}")
    commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    print(f"bench_peers {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, commit {commit}; {machine()}",
          flush=True)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for name, fn in (("startup", lambda: startup(args, tmp)), ("compile", lambda: compile_section(args, tmp)),
                         ("ppo", lambda: ppo_section(args)), ("solve", lambda: solve_section(args, tmp)),
                         ("throughput", lambda: throughput_section(args)), ("floor", lambda: floor_section(args, tmp)),
                         ("flops", lambda: flops_section(args))):
            if name in only:
                try:
                    fn()
                except Exception as e:  # report what failed, keep the other sections
                    print(f"  {name} failed: {e!r}", flush=True)
    print("\n| figure | pgrun | reference | ratio | goal |\n|---|---:|---:|---:|---|")
    for r in ROWS:
        print("| " + " | ".join(r) + " |")
    print(f"\n(total {time.perf_counter() - t0:.0f}s; load average at the end "
          f"{', '.join(f'{x:.1f}' for x in os.getloadavg())})")


if __name__ == "__main__":
    main()
