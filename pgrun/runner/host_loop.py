"""The host loop for `env=gym:<id>`: gymnasium steps on the host, learning stays jitted.

Per iteration: split each seed's key (as `Trainer.sample` does) -> `HostSampler.collect`
steps the vector env with the jitted policy -> the Batch [S, T, B, ...] goes to
`jit(vmap(trainer.update))`, the same update (estimators, critic, metrics) the pure-JAX
path scans. Output is the same metrics.csv, checkpoints/ and summary.json as
`pgrun.runner.loop.run`: metrics written every `log_every` iterations, a checkpoint every
`checkpoint_every` iterations, at the end and at Ctrl-C / SIGTERM (after the iteration in
progress), from which `resume=<run dir>` continues exactly and `pgrun-eval` evaluates; the
loggers of `cfg.logger` (TensorBoard, W&B, Trackio: `runner.loggers`) get each written chunk.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from pgrun.config.schema import Config
from pgrun.core.batch import Batch
from pgrun.rollout.host import HostSampler
from pgrun.runner.checkpoint import Checkpointer
from pgrun.runner.checkpoint import restore as restore_checkpoint
from pgrun.runner.divergence import diverged
from pgrun.runner.interrupt import DeferredInterrupt
from pgrun.runner.loggers import open_loggers
from pgrun.runner.metrics import COLUMNS, MetricsWriter, rows_from_chunk, versions, write_json
from pgrun.runner.rundir import truncate_metrics
from pgrun.runner.summary import final_figures, history
from pgrun.train.build import Components
from pgrun.train.program import init_seeds, make_train
from pgrun.train.sweep import make_layout


def _split_keys(keys):
    """keys [S] -> (next keys [S], rollout keys [S]): one split per seed, as Trainer.sample."""
    return jax.vmap(lambda k: tuple(jax.random.split(k)))(keys)


def run_host(cfg: Config, out_dir: str, parts: Components) -> dict:
    """Train cfg.num_seeds seeds on the gymnasium env of `parts` (built from cfg by
    `pgrun.train.build`); write metrics.csv, checkpoints/ and summary.json in out_dir, or continue
    the run in cfg.resume (out_dir is then that run directory).

    A checkpoint holds the TrainState of every seed (as on the pure-JAX path) and, in its
    metadata, each env copy's NumPy generator state (`HostSampler.rng_state`): every iteration
    resets all copies, so with these the resumed run samples exactly the episodes the
    uninterrupted one would have.
    """
    env, mode = parts.env, cfg.env.vectorization_mode
    trainer = make_train(cfg, parts)
    layout = make_layout(cfg)
    seeds = layout.seeds
    B, T = int(cfg.episodes_per_iteration), trainer.max_steps
    resume = bool(cfg.resume)
    metrics_path = os.path.join(out_dir, "metrics.csv")

    t0 = time.perf_counter()
    sampler = HostSampler(env, trainer.policy, seeds, B, T, dict(trainer.env_params), mode)
    try:
        state = init_seeds(trainer.init, jnp.stack([jax.random.PRNGKey(s) for s in seeds]))
        start, wall0, returns_by_iter = 0, 0.0, []
        if resume:
            restored, meta = restore_checkpoint(out_dir, jax.device_get(state))
            state = jax.device_put(restored)
            sampler.set_rng_state(meta["host_env"]["rng"])
            start, wall0 = int(meta["iteration"]), float(meta["wall_s"])
            returns_by_iter = history(truncate_metrics(metrics_path, start, COLUMNS), layout)
        split_keys = jax.jit(_split_keys)
        sampler.compile(state.params, split_keys(state.key)[1])
        update = jax.jit(jax.vmap(trainer.update), donate_argnums=0).lower(
            state, batch_spec(sampler)).compile()
    except BaseException:
        sampler.close()
        raise
    compile_s = time.perf_counter() - t0

    total, log_every = int(cfg.iterations), int(cfg.log_every)
    try:  # the loggers first: one that cannot start (W&B online without a login) leaves no metrics.csv
        loggers = open_loggers(cfg, out_dir, [0] * len(seeds), False, start if resume else None)
    except BaseException:
        sampler.close()
        raise
    writer = MetricsWriter(metrics_path, append=resume)
    ckpt = Checkpointer(out_dir, cfg.checkpoint_every, start)
    summary: dict[str, Any] = {
        "status": "running", "iterations": start, "seeds": seeds, "env": env.name,
        "max_episode_steps": T, "compile_s": round(compile_s, 3), "resumed_from": start if resume else None,
        "host_env": {"gym_id": env.gym_id, "vectorization_mode": mode, "num_envs": sampler.N}}
    env_steps = np.asarray(jax.device_get(state.env_steps), np.int64)
    pending: list[dict] = []
    update_s = 0.0  # seconds in the jitted update, host->device copy of the batch included
    bar = tqdm(total=total, initial=start, disable=not cfg.progress, file=sys.stderr, unit="it",
               dynamic_ncols=True)
    t_run = time.perf_counter()

    def flush(upto=None):
        if pending:
            m = {k: np.stack([p[k] for p in pending], axis=1) for k in pending[0]}
            m["active"] = np.ones_like(m["finite"], bool)
            writer.write_rows(rows_from_chunk(m, seeds, wall0 + time.perf_counter() - t_run, upto))
            if loggers is not None:
                loggers.write_chunk(m, upto)
            pending.clear()

    def save_checkpoint(iteration: int) -> None:
        """Metrics up to `iteration` are written first, so a resume never lacks rows."""
        flush()
        ckpt.save(iteration, jax.device_get(state), {
            "wall_s": wall0 + time.perf_counter() - t_run, "config": cfg.to_dict(),
            "layout": {"keys": [], "points": layout.points, "seeds": seeds},
            "host_env": {"gym_id": env.gym_id, "rng": sampler.rng_state()}})

    try:
        with DeferredInterrupt() as stop:
            for it in range(start + 1, total + 1):
                state_keys, roll_keys = split_keys(state.key)
                batch = sampler.collect(state.params, roll_keys)
                t_up = time.perf_counter()
                state, m = update(state._replace(key=state_keys), Batch(*batch))
                m = jax.device_get(m)
                update_s += time.perf_counter() - t_up
                if not m["finite"].all():
                    flush(upto=it)
                    i = int(np.argmin(m["finite"]))
                    summary["status"] = "diverged"
                    raise diverged(m, (i,), it, f"seed {seeds[i]}", metrics_path)
                pending.append(m)
                returns_by_iter.append(np.asarray(m["return_mean"]))
                env_steps = np.asarray(m["env_steps"], np.int64)
                summary["iterations"] = it
                if it % log_every == 0 or it == total:
                    flush()
                bar.update(1)
                wall = wall0 + time.perf_counter() - t_run
                bar.set_postfix(ret=f"{float(np.mean(returns_by_iter[-1])):.1f}",
                                sps=f"{env_steps.sum() / max(wall, 1e-9):.3g}")
                if stop.requested:
                    save_checkpoint(it)
                    raise stop.stop()
                if ckpt.due(it) and it < total:
                    save_checkpoint(it)
            save_checkpoint(summary["iterations"])
        summary["status"] = "completed"
    except KeyboardInterrupt:
        summary["status"] = "interrupted"
        flush()
        raise
    finally:
        bar.close()
        writer.close()
        ckpt.close()
        sampler.close()
        if loggers is not None:
            loggers.close(summary["status"])
        run_s = wall0 + time.perf_counter() - t_run
        summary.update(final_figures(returns_by_iter, seeds, env, env_steps, run_s))
        summary["host_env"].update({
            "vector_steps": sampler.vector_steps, "env_s": round(sampler.env_s, 3),
            "policy_s": round(sampler.policy_s, 3), "update_s": round(update_s, 3)})
        summary["versions"] = versions()
        summary["config"] = cfg.to_dict()
        write_json(os.path.join(out_dir, "summary.json"), summary)
    return summary


def batch_spec(sampler: HostSampler) -> Batch:
    """Shapes and dtypes of the Batch `collect` returns, [S, T, B, ...] (for ahead-of-time compile)."""
    S, T, B, D = sampler.S, sampler.T, sampler.B, sampler.obs_dim
    a_dtype = np.int32 if sampler.discrete else np.float32
    z: Callable[..., Any] = lambda shape, dt=np.float32: jax.ShapeDtypeStruct(shape, dt)  # noqa: E731
    return Batch(z((S, T, B, D)), z((S, T, B) + sampler.act_shape, a_dtype), z((S, T, B)), z((S, T, B)),
                 z((S, T, B), bool), z((S, T, B), bool), z((S, T, B), bool), z((S, T, B, D)))
