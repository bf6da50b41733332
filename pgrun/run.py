"""The host loop: compile once, run chunk after chunk, write metrics, guard against NaN."""

from __future__ import annotations

import math
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
from omegaconf import OmegaConf
from tqdm import tqdm

from pgrun.config import validate
from pgrun.envs import make_env
from pgrun.envs.host import is_host_config
from pgrun.metrics import MetricsWriter, confidence_interval, rows_from_chunk, versions, write_json
from pgrun.train import make_train


class TrainingDiverged(RuntimeError):
    """Loss, gradient or parameters became NaN/Inf; metrics up to that iteration are kept."""


def enable_compilation_cache() -> str:
    """Persistent XLA cache, so re-runs and multirun jobs skip compilation."""
    path = os.environ.get("PGRUN_CACHE_DIR", os.path.join(os.path.expanduser("~"), ".cache", "pgrun", "jax"))
    jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return path


def run(cfg, out_dir: str) -> dict:
    """Train cfg.num_seeds seeds in one compiled program; write metrics.csv and summary.json."""
    if is_host_config(cfg):  # env=gym:<id>: gymnasium stepped on the host (pgrun/host_run.py)
        from pgrun.host_run import run_host

        return run_host(cfg, out_dir)
    validate(cfg)
    validate(cfg, make_env(cfg.env.name))
    trainer = make_train(cfg)
    seeds = [int(cfg.seed) + i for i in range(int(cfg.num_seeds))]
    keys = jnp.stack([jax.random.PRNGKey(s) for s in seeds])

    total = int(cfg.iterations)
    writer = MetricsWriter(os.path.join(out_dir, "metrics.csv"))
    summary = {"status": "compiling", "iterations": 0, "seeds": seeds, "env": cfg.env.name,
               "max_episode_steps": trainer.max_steps, "compile_s": None}
    returns_by_iter: list[np.ndarray] = []
    env_steps = np.zeros(len(seeds), np.int64)
    bar = tqdm(total=total, disable=not cfg.progress, file=sys.stderr, unit="it", dynamic_ncols=True)
    t_run = time.perf_counter()
    try:
        bar.set_description("compiling")
        t0 = time.perf_counter()
        state = jax.jit(jax.vmap(trainer.init))(keys)
        chunk = jax.jit(jax.vmap(trainer.chunk), donate_argnums=0).lower(state).compile()
        summary["compile_s"] = round(time.perf_counter() - t0, 3)
        summary["status"] = "running"
        bar.set_description(f"{cfg.env.name} {cfg.estimator.name}")
        t_run = time.perf_counter()
        while summary["iterations"] < total:
            state, m = chunk(state)
            m = jax.device_get(m)
            wall = time.perf_counter() - t_run
            bad = np.argwhere(m["active"] & ~m["finite"])
            upto = None
            if len(bad):
                s, k = min(bad.tolist(), key=lambda sk: (sk[1], sk[0]))
                upto = int(m["iteration"][s, k])
            rows = rows_from_chunk(m, seeds, wall, upto)
            writer.write_rows(rows)
            done_iters = sorted({int(r["iteration"]) for r in rows})
            for it in done_iters:
                k = int(np.argmax(m["iteration"][0] == it))
                returns_by_iter.append(m["return_mean"][:, k])
            if done_iters:  # env steps up to the last iteration written (not past a divergence)
                env_steps = np.asarray(m["env_steps"][:, int(np.argmax(m["iteration"][0] == done_iters[-1]))])
            summary["iterations"] = done_iters[-1] if done_iters else summary["iterations"]
            bar.update(len(done_iters))
            bar.set_postfix(ret=f"{float(np.mean(returns_by_iter[-1])):.1f}" if returns_by_iter else "-",
                            sps=f"{env_steps.sum() / max(wall, 1e-9):.3g}")
            if upto is not None:
                summary["status"] = "diverged"
                raise TrainingDiverged(
                    f"training diverged: loss, gradient or parameters became NaN/Inf at iteration {upto} "
                    f"(seed {seeds[s]}); metrics of iterations 1..{upto - 1} are kept in "
                    f"{os.path.join(out_dir, 'metrics.csv')}. Try a smaller optimizer.lr or set "
                    "optimizer.max_grad_norm.")
        summary["status"] = "completed"
    except KeyboardInterrupt:
        summary["status"] = "interrupted"
        raise
    finally:
        bar.close()
        writer.close()
        run_s = time.perf_counter() - t_run
        summary.update(_final_figures(returns_by_iter, seeds, trainer.env, env_steps, run_s))
        summary["versions"] = versions()
        summary["config"] = OmegaConf.to_container(cfg, resolve=True)
        write_json(os.path.join(out_dir, "summary.json"), summary)
    return summary


def _final_figures(returns_by_iter, seeds, env, env_steps, run_s) -> dict:
    out = {"run_s": round(run_s, 3), "env_steps": int(np.sum(env_steps)),
           "env_steps_per_s": float(np.sum(env_steps) / run_s) if run_s > 0 else None}
    if not returns_by_iter:
        return out
    r = np.stack(returns_by_iter)  # [iterations, seeds]
    final = r[-10:].mean(axis=0)   # per seed: mean return over the last 10 iterations
    lo, hi = confidence_interval(final)
    out.update({
        "final_return_mean": float(final.mean()), "final_return_ci95": [lo, hi],
        "final_return_per_seed": {str(s): float(v) for s, v in zip(seeds, final)},
        "solved_threshold": env.solved_threshold,
    })
    if env.solved_threshold is not None:
        first = {}
        for j, s in enumerate(seeds):
            hit = np.nonzero(r[:, j] >= env.solved_threshold)[0]
            first[str(s)] = int(hit[0]) + 1 if len(hit) else None
        out["first_solved_iteration"] = first
        out["seeds_solved_final"] = int(np.sum(final >= env.solved_threshold))
    return out
