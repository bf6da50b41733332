"""Which error stops a run whose iteration went non-finite (the NaN guard's message)."""

from __future__ import annotations

import numpy as np

from pgrun.errors import ImportanceWeightOverflow, TrainingDiverged


def diverged(m: dict, at: tuple, iteration: int, where: str, metrics_path: str) -> TrainingDiverged:
    """The error for the non-finite iteration m[...][at]: ImportanceWeightOverflow when the
    program flagged an importance weight beyond float32 (`weight_overflow`, set by the batch-reuse
    update, `pgrun.train.offpolicy`), else the generic TrainingDiverged.

    m: host metrics {name: array}; at: the index of the failing run (and iteration) into them;
    iteration, where ("seed 3"), metrics_path: as `TrainingDiverged.at`.
    """
    if "weight_overflow" in m and bool(np.asarray(m["weight_overflow"])[at]):
        return ImportanceWeightOverflow.at(iteration, where, metrics_path, float(np.asarray(m["log_weight_max"])[at]))
    return TrainingDiverged.at(iteration, where, metrics_path)
