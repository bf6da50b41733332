"""Benchmark: one vmapped sweep vs a Hydra multirun, and env-steps/s as the seeds grow.

  python scripts/bench_sweep.py                       # both parts, default workload
  python scripts/bench_sweep.py --part seeds --seeds 1,4,16,64,256 --iterations 6
  python scripts/bench_sweep.py --part sweep --points 8 --seeds-per-point 8 --iterations 20

Part "sweep": the same P learning rates x S seeds (a) as ONE process and one compiled program,
`pgrun sweep.optimizer.lr=[...] num_seeds=S`, (b) as a Hydra multirun of P jobs with the
basic launcher, `pgrun -m optimizer.lr=a,b,... num_seeds=S` (one subprocess; the jobs run one
after another, each building and running its own program), (c) as the same multirun with the
joblib launcher (loky worker processes, pgrun's default n_jobs=2), and (d) as P separate
`pgrun` processes one after another. Wall time of each whole command, with a cold persistent
compilation cache (fresh PGRUN_CACHE_DIR) and again warm.
Part "seeds": env-steps/s (valid steps, excluding compile) of one process as num_seeds grows.
Part "steady": milliseconds per run and iteration of the compiled chunk in steady state (after
--warm-chunks chunks of training, long episodes) for several run counts, in one process: the
ratio shows whether more runs per program are cheaper per run (they are not on 2 CPU cores).
Results go to stdout as Markdown and to --out as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORKLOAD = ["env=CartPole", "policy=mlp", "estimator=baseline", "episodes_per_iteration=16", "progress=false",
            "checkpoint_every=0"]


def _pgrun(args: list[str], cache: str) -> float:
    env = {**os.environ, "PYTHONPATH": ROOT, "PGRUN_CACHE_DIR": cache}
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "pgrun.cli", *args], cwd=ROOT, env=env, capture_output=True, text=True)
    if p.returncode:
        raise RuntimeError(p.stderr[-3000:])
    return time.perf_counter() - t0


def bench_sweep(points: int, seeds: int, iterations: int, tmp: str) -> dict:
    lrs = [round(1e-3 * 1.6 ** i, 6) for i in range(points)]
    common = [*WORKLOAD, f"num_seeds={seeds}", f"iterations={iterations}", "log_every=10"]
    out = {"points": points, "seeds_per_point": seeds, "iterations": iterations, "lrs": lrs}
    for cache_state in ("cold", "warm"):
        cache = os.path.join(tmp, "cache-vmap")
        out[f"vmapped_s_{cache_state}"] = _pgrun(
            [*common, f"sweep.optimizer.lr=[{','.join(map(str, lrs))}]",
             f"hydra.run.dir={tmp}/vmap-{cache_state}"], cache)
        cache = os.path.join(tmp, "cache-multi")
        out[f"multirun_s_{cache_state}"] = _pgrun(
            ["-m", *common, f"optimizer.lr={','.join(map(str, lrs))}",
             f"hydra.sweep.dir={tmp}/multi-{cache_state}"], cache)
        out[f"ratio_{cache_state}"] = out[f"multirun_s_{cache_state}"] / out[f"vmapped_s_{cache_state}"]
        cache = os.path.join(tmp, "cache-joblib")
        out[f"joblib_s_{cache_state}"] = _pgrun(
            ["-m", "hydra/launcher=joblib", *common, f"optimizer.lr={','.join(map(str, lrs))}",
             f"hydra.sweep.dir={tmp}/joblib-{cache_state}"], cache)
        out[f"joblib_ratio_{cache_state}"] = out[f"joblib_s_{cache_state}"] / out[f"vmapped_s_{cache_state}"]
        cache = os.path.join(tmp, "cache-separate")
        out[f"separate_s_{cache_state}"] = sum(
            _pgrun([*common, f"optimizer.lr={lr}", f"hydra.run.dir={tmp}/sep-{cache_state}-{i}"], cache)
            for i, lr in enumerate(lrs))
        out[f"separate_ratio_{cache_state}"] = out[f"separate_s_{cache_state}"] / out[f"vmapped_s_{cache_state}"]
    return out


def bench_seeds(seed_counts: list[int], iterations: int, tmp: str) -> list[dict]:
    sys.path.insert(0, ROOT)
    from pgrun.config import compose, load
    from pgrun.runner.cache import enable_compilation_cache
    from pgrun.runner.loop import run

    os.environ.setdefault("PGRUN_CACHE_DIR", os.path.join(tmp, "cache-seeds"))
    enable_compilation_cache()
    rows = []
    for n in seed_counts:
        cfg = load(compose([*WORKLOAD, f"num_seeds={n}", f"iterations={iterations}",
                            f"log_every={max(1, iterations // 3)}"]))
        s = run(cfg, os.path.join(tmp, f"seeds-{n}"))
        rows.append({"num_seeds": n, "compile_s": s["compile_s"], "run_s": s["run_s"], "env_steps": s["env_steps"],
                     "env_steps_per_s": s["env_steps_per_s"],
                     "steps_per_s_per_seed": s["env_steps_per_s"] / n})
        print(f"  seeds={n}: {s['env_steps_per_s']:.4g} env-steps/s", file=sys.stderr, flush=True)
    return rows


def bench_steady(run_counts: list[int], warm_chunks: int, timed_chunks: int = 3) -> list[dict]:
    sys.path.insert(0, ROOT)
    import jax
    import numpy as np

    from pgrun.config import compose, load
    from pgrun.train.program import init_seeds, make_train

    cfg = load(compose([*WORKLOAD, "iterations=1000", "log_every=5"]))
    tr = make_train(cfg)
    rows = []
    for n in run_counts:
        chunk = jax.jit(jax.vmap(tr.chunk))
        state = init_seeds(tr.init, jax.random.split(jax.random.PRNGKey(0), n))
        for _ in range(warm_chunks):
            state, m = chunk(state)
        jax.block_until_ready(m)
        times = []
        for _ in range(timed_chunks):
            t0 = time.perf_counter()
            state, m = chunk(state)
            jax.block_until_ready(m)
            times.append(time.perf_counter() - t0)
        per = float(np.median(times)) / (5 * n)
        rows.append({"runs": n, "ms_per_run_iteration": per * 1e3, "length_mean": float(np.mean(m["length_mean"]))})
        print(f"  runs={n}: {per * 1e3:.2f} ms per run-iteration", file=sys.stderr, flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--part", choices=("sweep", "seeds", "steady", "both"), default="both",
                    help="both = sweep and seeds")
    ap.add_argument("--points", type=int, default=8)
    ap.add_argument("--seeds-per-point", type=int, default=8)
    ap.add_argument("--iterations", type=int, default=20, help="iterations of the sweep runs")
    ap.add_argument("--seeds", default="1,4,16,64,256", help="num_seeds values of part 'seeds'")
    ap.add_argument("--seed-iterations", type=int, default=6)
    ap.add_argument("--runs", default="8,64", help="run counts of part 'steady'")
    ap.add_argument("--warm-chunks", type=int, default=10, help="chunks of 5 iterations before timing (steady)")
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                    help="change the workload, e.g. --set env=Acrobot episodes_per_iteration=8")
    ap.add_argument("--out", default="bench_sweep.json")
    a = ap.parse_args()
    keys = {o.split("=", 1)[0] for o in a.set}
    WORKLOAD[:] = [w for w in WORKLOAD if w.split("=", 1)[0] not in keys] + a.set
    result = {"load_avg_before": os.getloadavg(), "cpus": os.cpu_count(), "workload": WORKLOAD}
    with tempfile.TemporaryDirectory(prefix="pgrun-bench-") as tmp:
        if a.part in ("sweep", "both"):
            r = result["sweep"] = bench_sweep(a.points, a.seeds_per_point, a.iterations, tmp)
            print(f"\n{a.points} points x {a.seeds_per_point} seeds, {a.iterations} iterations, {' '.join(WORKLOAD)}\n")
            print("| cache | vmapped sweep (1 process) | Hydra multirun, basic launcher (ratio) | "
                  "Hydra multirun, joblib launcher, 2 workers (ratio) | "
                  f"{a.points} separate pgrun processes (ratio) |\n|---|---|---|---|---|")
            for c in ("cold", "warm"):
                print(f"| {c} | {r[f'vmapped_s_{c}']:.1f} s | {r[f'multirun_s_{c}']:.1f} s ({r[f'ratio_{c}']:.1f}x) | "
                      f"{r[f'joblib_s_{c}']:.1f} s ({r[f'joblib_ratio_{c}']:.1f}x) | "
                      f"{r[f'separate_s_{c}']:.1f} s ({r[f'separate_ratio_{c}']:.1f}x) |")
        if a.part in ("seeds", "both"):
            rows = result["seeds"] = bench_seeds([int(x) for x in a.seeds.split(",")], a.seed_iterations, tmp)
            print(f"\nenv-steps/s by num_seeds ({a.seed_iterations} iterations, {' '.join(WORKLOAD)})\n")
            print("| num_seeds | env-steps/s | per seed | run s | compile s |\n|---|---|---|---|---|")
            for r in rows:
                print(f"| {r['num_seeds']} | {r['env_steps_per_s']:.4g} | {r['steps_per_s_per_seed']:.4g} | "
                      f"{r['run_s']:.2f} | {r['compile_s']:.1f} |")
        if a.part == "steady":
            rows = result["steady"] = bench_steady([int(x) for x in a.runs.split(",")], a.warm_chunks)
            print(f"\nsteady state after {a.warm_chunks * 5} iterations ({' '.join(WORKLOAD)})\n")
            print("| runs in the program | ms per run-iteration | mean episode length |\n|---|---|---|")
            for r in rows:
                print(f"| {r['runs']} | {r['ms_per_run_iteration']:.2f} | {r['length_mean']:.0f} |")
    result["load_avg_after"] = os.getloadavg()
    with open(a.out, "w") as f:
        json.dump(result, f, indent=2)
    print(f"\nload average before/after: {result['load_avg_before']} / {result['load_avg_after']}; wrote {a.out}")


if __name__ == "__main__":
    main()
