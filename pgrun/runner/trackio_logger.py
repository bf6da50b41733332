"""Optional Trackio logging (`logger.trackio=true`), beside metrics.csv.

Trackio's local store (`$TRACKIO_DIR`, default `~/.cache/huggingface/trackio/<project>.db`; view
it with `trackio show --project <project>`), project `logger.trackio_project`, one Trackio run
per pgrun run named `<run name>-<6 hex>` (`runner.loggers.run_name`) (kept in `<run dir>/loggers.json`; `resume=`
continues that run), the run's config as its config. History: `runner.scalars.chunk_scalars`'s
values at step = iteration, keyed as for W&B (`runner.scalars.step_rows`). Trackio's own messages
go to stderr (pgrun's stdout is the result line). Finished at the end, on Ctrl-C / SIGTERM and on
a divergence.
"""

from __future__ import annotations

import contextlib
import sys
import uuid

import numpy as np

from pgrun.runner.scalars import step_rows


class TrackioLogger:
    def __init__(self, base_name: str, config: dict, project: str, point_of_run: list[int], sweep: bool, state: dict):
        """`state`: this logger's entry of loggers.json ({"name", "last_step"}), updated in place."""
        import trackio

        self.trackio, self.point_of_run, self.sweep, self.state = trackio, np.asarray(point_of_run), sweep, state
        name = state.get("name") or f"{base_name}-{uuid.uuid4().hex[:6]}"  # unique in the project
        with contextlib.redirect_stdout(sys.stderr):
            self.run = trackio.init(project=project, name=name, config=config, resume="allow", embed=False,
                                    auto_log_cpu=False, auto_log_gpu=False)
        state["name"] = name

    def write_chunk(self, m: dict, upto: int | None = None) -> None:
        """Host metrics {name: [R, K]} of one chunk; active iterations (< upto) not yet logged."""
        for step, row in step_rows(m, self.point_of_run, self.sweep, upto, self.state.get("last_step")):
            self.run.log(row, step=step)
            self.state["last_step"] = step

    def close(self, status: str = "completed") -> None:
        with contextlib.redirect_stdout(sys.stderr):
            self.trackio.finish()
