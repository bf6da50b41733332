"""Optional TensorBoard event files (`logger.tensorboard=true`), beside metrics.csv.

Written to `<run dir>/tensorboard/` (without a sweep) or `<run dir>/tensorboard/point_<p>/`
(one TensorBoard "run" per sweep point): each metric of metrics.csv as a scalar at
step = iteration, averaged over the point's seeds, plus `return_mean_min` / `_max` over seeds.
Uses the `tensorboard` package's own event writer; the values are `runner.scalars.chunk_scalars`'s
(shared with the W&B and Trackio loggers); metrics.csv stays the record.
"""

from __future__ import annotations

import os
import time

import numpy as np

from pgrun.runner.scalars import chunk_scalars

TB_DIR = "tensorboard"


class TensorBoardLogger:
    def __init__(self, run_dir: str, point_of_run: list[int], sweep: bool, resume_step: int | None = None):
        from tensorboard.summary.writer.event_file_writer import EventFileWriter

        self.point_of_run = np.asarray(point_of_run)
        n_points = int(self.point_of_run.max()) + 1
        base = os.path.join(run_dir, TB_DIR)
        dirs = [os.path.join(base, f"point_{p}") for p in range(n_points)] if sweep else [base]
        self.writers = [EventFileWriter(d) for d in dirs]
        if resume_step is not None:  # TensorBoard drops older events at steps >= this one (orphans of a kill)
            from tensorboard.compat.proto.event_pb2 import Event, SessionLog

            for w in self.writers:
                w.add_event(Event(step=resume_step + 1, wall_time=time.time(),
                                  session_log=SessionLog(status=SessionLog.START)))

    def write_chunk(self, m: dict, upto: int | None = None) -> None:
        """Host metrics {name: [R, K]} of one chunk; active iterations (< upto) only."""
        from tensorboard.compat.proto.event_pb2 import Event
        from tensorboard.compat.proto.summary_pb2 import Summary

        for step, p, values in chunk_scalars(m, self.point_of_run, upto):
            summary = Summary(value=[Summary.Value(tag=k, simple_value=v) for k, v in values.items()])
            self.writers[p].add_event(Event(step=step, wall_time=time.time(), summary=summary))
        for w in self.writers:
            w.flush()

    def close(self, status: str = "completed") -> None:
        """`status` (completed / diverged / interrupted) is for the loggers that record it."""
        for w in self.writers:
            w.close()
