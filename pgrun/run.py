"""The host loop: compile once, run chunk after chunk, write metrics, guard against NaN."""

from __future__ import annotations

import math
import os
import sys
import time

import jax
import numpy as np
from omegaconf import OmegaConf
from tqdm import tqdm

from pgrun.checkpoint import Checkpointer, read_meta
from pgrun.checkpoint import restore as restore_checkpoint
from pgrun.config import validate
from pgrun.envs import make_env
from pgrun.envs.host import is_host_config
from pgrun.interrupt import DeferredInterrupt
from pgrun.metrics import COLUMNS, MetricsWriter, confidence_interval, rows_from_chunk, versions, write_json
from pgrun.rundir import check_resume_config, truncate_metrics
from pgrun.rundir import prepare as prepare_run_dir
from pgrun.sharding import pad_runs, place, run_sharding, unpad_runs
from pgrun.sweep import init_runs, make_layout
from pgrun.train import make_train


class TrainingDiverged(RuntimeError):
    """Loss, gradient or parameters became NaN/Inf; metrics up to that iteration are kept."""

    @classmethod
    def at(cls, iteration: int, where: str, metrics_path: str) -> "TrainingDiverged":
        """The user's message: which iteration and run, where the earlier metrics are, what to try."""
        return cls(
            f"training diverged: loss, gradient or parameters became NaN/Inf at iteration {iteration} "
            f"({where}); metrics of iterations 1..{iteration - 1} are kept in {metrics_path}. "
            "Try a smaller optimizer.lr or set optimizer.max_grad_norm.")


def enable_compilation_cache() -> str:
    """Persistent XLA cache, so re-runs and multirun jobs skip compilation."""
    path = os.environ.get("PGRUN_CACHE_DIR", os.path.join(os.path.expanduser("~"), ".cache", "pgrun", "jax"))
    jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return path


def run(cfg, out_dir: str) -> dict:
    """Train every sweep point x cfg.num_seeds seeds in one compiled program (the run axis sharded
    over the devices); write metrics.csv, checkpoints/ and summary.json in out_dir, or continue the
    run in cfg.resume. Raises ConfigError (RunDirExists) before anything runs."""
    validate(cfg)
    if not is_host_config(cfg):
        validate(cfg, make_env(cfg.env.name))
    resume = bool(cfg.get("resume"))
    if resume:
        check_resume_config(cfg, read_meta(str(cfg.resume))["config"])
    out_dir = prepare_run_dir(cfg, out_dir)
    if is_host_config(cfg):  # env=gym:<id>: gymnasium stepped on the host (pgrun/host_run.py)
        from pgrun.host_run import run_host

        return run_host(cfg, out_dir)
    trainer = make_train(cfg)
    layout = make_layout(cfg)
    seeds, n_runs = layout.run_seeds, layout.num_runs
    sharding, padded = run_sharding(n_runs)
    keys = pad_runs(np.stack([np.asarray(jax.random.PRNGKey(s)) for s in seeds]), padded)
    values = pad_runs(layout.values(), padded)
    shard_out = {"out_shardings": sharding} if sharding is not None else {}
    shard_in = {"in_shardings": (sharding,)} if sharding is not None else {}
    metrics_path = os.path.join(out_dir, "metrics.csv")
    columns = layout.columns(COLUMNS)

    t0 = time.perf_counter()
    state = place(init_runs(trainer, keys, values), sharding)  # on one device, then sharded
    start, wall0, returns_by_iter = 0, 0.0, []
    if resume:
        host, meta = restore_checkpoint(out_dir, unpad_runs(state, n_runs))
        start, wall0 = int(meta["iteration"]), float(meta["wall_s"])
        state = place(pad_runs(host, padded), sharding)
        returns_by_iter = _history(truncate_metrics(metrics_path, start, columns), layout)
    chunk = jax.jit(jax.vmap(trainer.chunk), donate_argnums=0, **shard_in, **shard_out).lower(state).compile()
    compile_s = time.perf_counter() - t0

    total = int(cfg.iterations)
    writer = MetricsWriter(metrics_path, columns, append=resume)
    ckpt = Checkpointer(out_dir, cfg.get("checkpoint_every"), start)
    tb = None
    if cfg.get("logger") and cfg.logger.get("tensorboard"):
        from pgrun.tb import TensorBoardLogger

        tb = TensorBoardLogger(out_dir, layout.run_points, bool(layout.keys), start if resume else None)
    summary = {"status": "running", "iterations": start, "seeds": layout.seeds, "env": cfg.env.name,
               "max_episode_steps": trainer.max_steps, "compile_s": round(compile_s, 3),
               "devices": len(jax.devices()), "resumed_from": start if resume else None}
    env_steps = np.asarray(unpad_runs(state.env_steps, n_runs), np.int64)
    bar = tqdm(total=total, initial=start, disable=not cfg.progress, file=sys.stderr, unit="it",
               dynamic_ncols=True)
    t_run = time.perf_counter()

    def save_checkpoint(iteration: int, wall: float) -> None:
        ckpt.save(iteration, unpad_runs(state, n_runs), {
            "wall_s": wall, "config": OmegaConf.to_container(cfg, resolve=True),
            "layout": {"keys": list(layout.keys), "points": layout.points, "seeds": layout.seeds}})

    wall = wall0
    try:
        with DeferredInterrupt() as stop:
            while summary["iterations"] < total:
                state, m = chunk(state)
                m = unpad_runs(m, n_runs)
                wall = wall0 + time.perf_counter() - t_run
                bad = np.argwhere(m["active"] & ~m["finite"])
                upto = None
                if len(bad):
                    s, k = min(bad.tolist(), key=lambda sk: (sk[1], sk[0]))
                    upto = int(m["iteration"][s, k])
                rows = rows_from_chunk(m, seeds, wall, upto, layout.row_extras())
                writer.write_rows(rows)
                if tb is not None:
                    tb.write_chunk(m, upto)
                done_iters = sorted({int(r["iteration"]) for r in rows})
                for it in done_iters:
                    k = int(np.argmax(m["iteration"][0] == it))
                    returns_by_iter.append(m["return_mean"][:, k])
                if done_iters:  # env steps up to the last iteration written (not past a divergence)
                    last = int(np.argmax(m["iteration"][0] == done_iters[-1]))
                    env_steps = np.asarray(m["env_steps"][:, last])
                summary["iterations"] = done_iters[-1] if done_iters else summary["iterations"]
                bar.update(len(done_iters))
                bar.set_postfix(ret=f"{float(np.mean(returns_by_iter[-1])):.1f}" if returns_by_iter else "-",
                                sps=f"{env_steps.sum() / max(wall, 1e-9):.3g}")
                if upto is not None:
                    summary["status"] = "diverged"
                    where = f"seed {seeds[s]}" + (f", sweep point {layout.run_points[s]}" if layout.keys else "")
                    raise TrainingDiverged.at(upto, where, metrics_path)
                if stop.requested:
                    save_checkpoint(summary["iterations"], wall)
                    raise stop.stop()
                if ckpt.due(summary["iterations"]) and summary["iterations"] < total:
                    save_checkpoint(summary["iterations"], wall)
            save_checkpoint(summary["iterations"], wall)
        summary["status"] = "completed"
    except KeyboardInterrupt:
        summary["status"] = "interrupted"
        raise
    finally:
        bar.close()
        writer.close()
        ckpt.close()
        if tb is not None:
            tb.close()
        run_s = wall0 + time.perf_counter() - t_run
        summary.update(_final_figures(returns_by_iter, layout.seeds, trainer.env, env_steps, run_s, layout))
        summary["versions"] = versions()
        summary["config"] = OmegaConf.to_container(cfg, resolve=True)
        write_json(os.path.join(out_dir, "summary.json"), summary)
    return summary


def _history(rows: list[dict], layout) -> list[np.ndarray]:
    """return_mean per iteration [R] rebuilt from metrics.csv rows (for summary figures on resume)."""
    by_iter: dict[int, np.ndarray] = {}
    for r in rows:
        it = int(r["iteration"])
        arr = by_iter.setdefault(it, np.full(layout.num_runs, np.nan, np.float32))  # as computed
        j = layout.run_index(int(r.get("point") or 0), int(r["seed"]))
        arr[j] = float(r["return_mean"]) if r["return_mean"] != "" else np.nan
    return [by_iter[it] for it in sorted(by_iter)]


def _final_figures(returns_by_iter, seeds, env, env_steps, run_s, layout=None) -> dict:
    out = {"run_s": round(run_s, 3), "env_steps": int(np.sum(env_steps)),
           "env_steps_per_s": float(np.sum(env_steps) / run_s) if run_s > 0 else None}
    if not returns_by_iter:
        return out
    r = np.stack(returns_by_iter)  # [iterations, runs]
    if layout is None or not layout.keys:
        out.update(_return_figures(r, seeds, env))
        return out
    points = []
    for p, values in enumerate(layout.points):
        runs = np.asarray(layout.run_points) == p
        points.append({"point": p, **values, **_return_figures(r[:, runs], seeds, env)})
    best = max(range(len(points)), key=lambda p: np.nan_to_num(points[p]["final_return_mean"], nan=-np.inf))
    out.update({"points": points, "best_point": best,
                "final_return_mean": points[best]["final_return_mean"],
                "final_return_ci95": points[best]["final_return_ci95"]})
    return out


def _return_figures(r, seeds, env) -> dict:
    """Figures of one point: r [iterations, seeds] of return_mean."""
    out = {}
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
