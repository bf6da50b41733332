"""The host loop: compile once, run chunk after chunk, write metrics, guard against NaN."""

from __future__ import annotations

import importlib
import os
import sys
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable

import jax
import numpy as np
from tqdm import tqdm

from pgrun.config.schema import Config
from pgrun.runner.checkpoint import Checkpointer, read_meta
from pgrun.runner.checkpoint import restore as restore_checkpoint
from pgrun.runner.divergence import diverged
from pgrun.runner.host_loop import run_host
from pgrun.runner.interrupt import DeferredInterrupt
from pgrun.runner.loggers import open_loggers
from pgrun.runner.metrics import COLUMNS, SEQUENCE_COLUMNS, MetricsWriter, rows_from_chunk, versions, write_json
from pgrun.runner.rundir import check_resume_config, truncate_metrics
from pgrun.runner.rundir import prepare as prepare_run_dir
from pgrun.runner.summary import final_figures, history, return_label
from pgrun.train.build import build, is_host_env
from pgrun.train.program import make_train
from pgrun.train.sharding import pad_runs, place, run_sharding, unpad_runs
from pgrun.train.sweep import init_runs, make_layout


def compile_ahead(program: Any, shapes: Callable[[], Any]) -> Future:
    """`program.lower(shapes()).compile()` started in a worker thread; `.result()` waits for it
    (and re-raises what it raised)."""
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pgrun-compile")
    future = pool.submit(lambda: program.lower(shapes()).compile())
    pool.shutdown(wait=False)  # the thread ends with the compilation
    return future


# imported by the end of every run (the final checkpoint): a slow import (orbax, 0.1 s and more
# under load) that would otherwise stall the exit. The summary's bootstrap CI is NumPy (runner.stats).
END_OF_RUN_MODULES = ("orbax.checkpoint",)


def prewarm_imports(modules: tuple[str, ...] = END_OF_RUN_MODULES) -> threading.Thread:
    """Import `modules` in a daemon thread, while XLA compiles (which releases the GIL)."""
    thread = threading.Thread(target=lambda: [importlib.import_module(m) for m in modules],
                              name="pgrun-prewarm", daemon=True)
    thread.start()
    return thread


def run(cfg: Config, out_dir: str) -> dict:
    """Train every sweep point x cfg.num_seeds seeds in one compiled program (the run axis sharded
    over the devices); write metrics.csv, checkpoints/ and summary.json in out_dir, or continue the
    run in cfg.resume. `cfg` comes from `pgrun.config.load` (validated). Raises ConfigError
    (RunDirExists) before anything runs."""
    host = is_host_env(cfg)  # env=gym:<id>: gymnasium stepped on the host (runner/host_loop.py),
    parts = None if host else build(cfg)  # made once the run directory is known to be ours
    resume = bool(cfg.resume)
    if resume:
        check_resume_config(cfg, read_meta(str(cfg.resume))["config"])
    out_dir = prepare_run_dir(cfg, out_dir)
    if host:
        return run_host(cfg, out_dir, build(cfg))
    trainer = make_train(cfg, parts)
    layout = make_layout(cfg)
    seeds, n_runs = layout.run_seeds, layout.num_runs
    sharding, padded = run_sharding(n_runs)
    keys = pad_runs(np.stack([np.asarray(jax.random.PRNGKey(s)) for s in seeds]), padded)
    values = pad_runs(layout.values(), padded)
    shard_out: dict[str, Any] = {"out_shardings": sharding} if sharding is not None else {}
    shard_in: dict[str, Any] = {"in_shardings": (sharding,)} if sharding is not None else {}
    metrics_path = os.path.join(out_dir, "metrics.csv")
    columns = layout.columns(COLUMNS + (SEQUENCE_COLUMNS if hasattr(trainer.env, "exact_match") else []))

    t0 = time.perf_counter()
    program = jax.jit(jax.vmap(trainer.chunk), donate_argnums=0, **shard_in, **shard_out)
    # On one device the chunk compiles (in another thread) from the state's shapes while the
    # initial state compiles and runs here: two XLA compilations at once, the same programs.
    ahead = compile_ahead(program, lambda: jax.eval_shape(lambda k, v: init_runs(trainer, k, v), keys, values)) \
        if sharding is None else None
    state = place(init_runs(trainer, keys, values), sharding)  # on one device, then sharded
    start, wall0, returns_by_iter = 0, 0.0, []
    if resume:
        host, meta = restore_checkpoint(out_dir, unpad_runs(state, n_runs))
        start, wall0 = int(meta["iteration"]), float(meta["wall_s"])
        state = place(pad_runs(host, padded), sharding)
        returns_by_iter = history(truncate_metrics(metrics_path, start, columns), layout)
    warm = prewarm_imports()
    chunk = ahead.result() if ahead is not None else program.lower(state).compile()
    compile_s = time.perf_counter() - t0
    # the loggers before metrics.csv: one that cannot start (W&B online without a login) leaves none.
    # Their imports wait for the prewarm thread's: with both at once, pytest's rewriting of orbax's
    # test_utils in that thread failed with CPython 3.11's "AST constructor recursion depth mismatch"
    if cfg.logger.wandb or cfg.logger.trackio:
        warm.join()
    loggers = open_loggers(cfg, out_dir, layout.run_points, bool(layout.keys), start if resume else None)

    total = int(cfg.iterations)
    writer = MetricsWriter(metrics_path, columns, append=resume)
    ckpt = Checkpointer(out_dir, cfg.checkpoint_every, start)
    summary: dict[str, Any] = {"status": "running", "iterations": start, "seeds": layout.seeds, "env": cfg.env.name,
               "max_episode_steps": trainer.max_steps, "compile_s": round(compile_s, 3),
               "devices": len(jax.devices()), "resumed_from": start if resume else None}
    env_steps = np.asarray(unpad_runs(state.env_steps, n_runs), np.int64)
    bar = tqdm(total=total, initial=start, disable=not cfg.progress, file=sys.stderr, unit="it",
               dynamic_ncols=True)
    ret_label = return_label(len(layout.points) if layout.keys else 1)  # a sweep: mean over all points
    t_run = time.perf_counter()

    def save_checkpoint(iteration: int, wall: float) -> None:
        ckpt.save(iteration, unpad_runs(state, n_runs), {
            "wall_s": wall, "config": cfg.to_dict(),
            "layout": {"keys": list(layout.keys), "points": layout.points, "seeds": layout.seeds}})

    wall = wall0
    try:
        with DeferredInterrupt() as stop:
            while summary["iterations"] < total:
                state, m = chunk(state)
                m = unpad_runs(m, n_runs)
                wall = wall0 + time.perf_counter() - t_run
                bad = np.argwhere(m["active"] & ~m["finite"])
                upto, at = None, (0, 0)
                if len(bad):
                    s, k = min(bad.tolist(), key=lambda sk: (sk[1], sk[0]))
                    at, upto = (s, k), int(m["iteration"][s, k])  # k is reused below
                rows = rows_from_chunk(m, seeds, wall, upto, layout.row_extras())
                writer.write_rows(rows)
                if loggers is not None:
                    loggers.write_chunk(m, upto)
                done_iters = sorted({int(r["iteration"]) for r in rows})
                for it in done_iters:
                    k = int(np.argmax(m["iteration"][0] == it))
                    returns_by_iter.append(m["return_mean"][:, k])
                if done_iters:  # env steps up to the last iteration written (not past a divergence)
                    last = int(np.argmax(m["iteration"][0] == done_iters[-1]))
                    env_steps = np.asarray(m["env_steps"][:, last])
                summary["iterations"] = done_iters[-1] if done_iters else summary["iterations"]
                bar.update(len(done_iters))
                bar.set_postfix({ret_label: f"{float(np.mean(returns_by_iter[-1])):.1f}" if returns_by_iter else "-",
                                 "sps": f"{env_steps.sum() / max(wall, 1e-9):.3g}"})
                if upto is not None:
                    summary["status"] = "diverged"
                    where = f"seed {seeds[s]}" + (f", sweep point {layout.run_points[s]}" if layout.keys else "")
                    raise diverged(m, at, upto, where, metrics_path)
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
        if loggers is not None:
            loggers.close(summary["status"])
        run_s = wall0 + time.perf_counter() - t_run
        summary.update(final_figures(returns_by_iter, layout.seeds, trainer.env, env_steps, run_s, layout))
        summary["versions"] = versions()
        summary["config"] = cfg.to_dict()
        write_json(os.path.join(out_dir, "summary.json"), summary)
    return summary
