"""Checkpoints of every run's TrainState with orbax, under `<run dir>/checkpoints/<iteration>/`.

A checkpoint holds `state`, the TrainState of all R runs (points x seeds) as host arrays with
the run axis first (params, optimizer and critic states, hp, PRNG keys, counters), flattened
to {leaf_000: ..., ...} in `jax.tree_util` order, and `meta`, JSON: the iteration, wall_s,
the resolved config, the run layout and the leaves' key paths (checked on restore). Orbax
writes a step into a temporary directory and renames it when complete, so a run killed
mid-save still has its previous checkpoint as the latest. Saves are synchronous (states are
small) so that a checkpoint exists when `save` returns.
"""

from __future__ import annotations

import logging
import os
import re
from typing import TYPE_CHECKING

import jax
import numpy as np

if TYPE_CHECKING:
    import orbax.checkpoint as ocp

CHECKPOINT_DIR = "checkpoints"


def _manager(run_dir: str, create: bool):
    import orbax.checkpoint as ocp

    logging.getLogger("absl").setLevel(logging.WARNING)  # orbax logs every step of a save at INFO

    options = ocp.CheckpointManagerOptions(max_to_keep=2, enable_async_checkpointing=False, create=create)
    return ocp.CheckpointManager(os.path.abspath(os.path.join(run_dir, CHECKPOINT_DIR)), options=options)


def _flatten(state) -> tuple[dict[str, np.ndarray], list[str]]:
    paths_leaves = jax.tree_util.tree_flatten_with_path(state)[0]
    flat = {f"leaf_{i:03d}": np.asarray(leaf) for i, (_, leaf) in enumerate(paths_leaves)}
    return flat, [jax.tree_util.keystr(p) for p, _ in paths_leaves]


def _canonical(path: str) -> str:
    """A leaf's key path with dict keys written as attributes (`.hp['gamma']` -> `.hp.gamma`), so a
    checkpoint written when TrainState.hp / .extra were dicts restores into their NamedTuples."""
    return re.sub(r"\['([A-Za-z_][A-Za-z0-9_]*)'\]", r".\1", path)


class Checkpointer:
    """Saves every `every` iterations (at the first chunk boundary at or past each multiple)."""

    def __init__(self, run_dir: str, every: int | None, start_iteration: int = 0):
        self.run_dir, self.every, self.last = run_dir, int(every or 0), start_iteration
        self._mngr: ocp.CheckpointManager | None = None

    def due(self, iteration: int) -> bool:
        return self.every > 0 and iteration // self.every > self.last // self.every

    def save(self, iteration: int, state, meta: dict) -> None:
        """Save the host pytree `state` (run axis first) at `iteration`; no-op if already saved."""
        import orbax.checkpoint as ocp

        if self._mngr is None:
            self._mngr = _manager(self.run_dir, create=True)
        if iteration in self._mngr.all_steps():
            return
        flat, paths = _flatten(state)
        meta = {**meta, "iteration": int(iteration), "leaves": paths}
        self._mngr.save(iteration, args=ocp.args.Composite(
            state=ocp.args.StandardSave(flat), meta=ocp.args.JsonSave(meta)))
        self._mngr.wait_until_finished()
        self.last = iteration

    def close(self) -> None:
        if self._mngr is not None:
            self._mngr.close()


def latest_step(run_dir: str) -> int | None:
    """Iteration of the newest complete checkpoint in run_dir, or None."""
    if not os.path.isdir(os.path.join(run_dir, CHECKPOINT_DIR)):
        return None
    mngr = _manager(run_dir, create=False)
    try:
        return mngr.latest_step()
    finally:
        mngr.close()


def read_meta(run_dir: str, step: int | None = None) -> dict:
    """The JSON metadata of a checkpoint (default: the latest)."""
    import orbax.checkpoint as ocp

    mngr = _manager(run_dir, create=False)
    try:
        step = mngr.latest_step() if step is None else step
        return mngr.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]
    finally:
        mngr.close()


def restore(run_dir: str, template, step: int | None = None):
    """(state, meta) of a checkpoint; `template` is a pytree of the right structure and shapes."""
    import orbax.checkpoint as ocp

    from pgrun.errors import ConfigError

    flat_t, paths = _flatten(template)
    mngr = _manager(run_dir, create=False)
    try:
        step = mngr.latest_step() if step is None else step
        if step is None:
            raise ConfigError(f"resume={run_dir}: no checkpoint in {os.path.join(run_dir, CHECKPOINT_DIR)}.")
        meta = mngr.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]
        if [_canonical(p) for p in meta.get("leaves", [])] != [_canonical(p) for p in paths]:
            raise ConfigError(
                f"the checkpoint at iteration {step} in {run_dir} holds a different TrainState structure than "
                "this config builds (another estimator, policy or pgrun version); resume it with its own config.")
        out = mngr.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(flat_t)))["state"]
    finally:
        mngr.close()
    for k, v in flat_t.items():
        if out[k].shape != v.shape or out[k].dtype != v.dtype:
            raise ConfigError(
                f"the checkpoint at iteration {step} has {k} of shape {out[k].shape}, this config builds "
                f"{v.shape}: num_seeds or the sweep differ from the run's; resume it with its own config.")
    leaves = [np.asarray(out[f"leaf_{i:03d}"]) for i in range(len(flat_t))]
    return jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(template), leaves), meta
