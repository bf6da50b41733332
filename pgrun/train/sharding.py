"""Spread the run axis (sweep points x seeds) over all devices.

Layout: a 1-D `jax.sharding.Mesh` named ("runs",) over `jax.devices()`, and
`NamedSharding(mesh, P("runs"))` on the leading axis of every state leaf and metric, so each
device trains R / D runs; the only data that moves between devices is one bool per chunk of
an episode loop (`batching.any_in_program`: stop when no run has a live episode). When R is
not a multiple of D the run axis is padded with copies of run 0, computed and then dropped on
the host: results of the real runs do not depend on the padding.
"""

from __future__ import annotations

from typing import Any, Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec


def run_sharding(num_runs: int, devices: Sequence[jax.Device] | None = None) -> tuple[NamedSharding | None, int]:
    """(sharding of the leading run axis, padded run count); (None, num_runs) on one device."""
    devices = list(devices if devices is not None else jax.devices())
    if len(devices) == 1:
        return None, num_runs
    mesh = Mesh(np.array(devices), ("runs",))
    padded = -(-num_runs // len(devices)) * len(devices)
    return NamedSharding(mesh, PartitionSpec("runs")), padded


def pad_runs(tree: Any, padded: int) -> Any:
    """Host pytree with leading axis R -> leading axis `padded`, extra rows copies of row 0."""

    def pad(x):
        x = np.asarray(x)
        extra = padded - x.shape[0]
        return x if extra <= 0 else np.concatenate([x, np.repeat(x[:1], extra, axis=0)])

    return jax.tree_util.tree_map(pad, tree)


def unpad_runs(tree: Any, num_runs: int) -> Any:
    """Host copy of a pytree with the padding runs dropped: leading axis `num_runs`."""
    return jax.tree_util.tree_map(lambda x: np.asarray(x)[:num_runs], jax.device_get(tree))


def place(tree, sharding):
    """Put a host pytree on the device(s): sharded along the run axis, or default placement."""
    return jax.device_put(tree, sharding) if sharding is not None else jax.device_put(tree)
