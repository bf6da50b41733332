"""Optional Weights & Biases logging (`logger.wandb=true`), beside metrics.csv.

One W&B run per pgrun run (named `runner.loggers.run_name`), in `logger.wandb_mode` (default
`offline`: nothing leaves the machine; `wandb sync <run dir>/wandb` uploads it later; `online`
logs as it runs), its files under `<run dir>/wandb/`, project `logger.wandb_project`, the run's
config as the W&B config. History: `runner.scalars.step_rows`, TensorBoard's values at
step = iteration, keyed `<metric>` (no sweep) or `point_<p>/<metric>` (a sweep). The W&B run id
is kept in `<run dir>/loggers.json`; `resume=` continues that id (`resume="allow"`: online the
same W&B run; offline a second `offline-run-*` directory with the same id, which `wandb sync`
replays after the first). The run is finished at the end, on Ctrl-C / SIGTERM and on a
divergence (exit code 0 when completed, 1 otherwise, and the pgrun status in its summary).
"""

from __future__ import annotations

from typing import Any, cast

import numpy as np

from pgrun.errors import ConfigError
from pgrun.runner.scalars import step_rows


class WandbLogger:
    def __init__(self, run_dir: str, name: str, config: dict, project: str, mode: str, point_of_run: list[int],
                 sweep: bool, state: dict):
        """`state`: this logger's entry of loggers.json ({"id", "last_step"}), updated in place."""
        import wandb

        self.point_of_run, self.sweep, self.state = np.asarray(point_of_run), sweep, state
        resume_id = state.get("id")
        try:
            self.run = wandb.init(
                project=project, dir=run_dir, mode=cast(Any, mode),  # validated: online|offline|disabled
                id=resume_id, resume="allow" if resume_id else None,
                name=name, config=config, reinit="create_new",
                settings=wandb.Settings(silent=True, console="off"))
        except wandb.errors.Error as e:  # e.g. online without credentials: "No API key configured"
            raise ConfigError(f"logger.wandb=true logger.wandb_mode={mode}: W&B could not start the run "
                              f"({str(e).splitlines()[0] if str(e) else type(e).__name__}); for online mode run "
                              "`wandb login` first (or set WANDB_API_KEY), or keep the default "
                              "logger.wandb_mode=offline and `wandb sync <run dir>/wandb` later.") from None
        state["id"] = self.run.id

    def write_chunk(self, m: dict, upto: int | None = None) -> None:
        """Host metrics {name: [R, K]} of one chunk; active iterations (< upto) not yet logged."""
        for step, row in step_rows(m, self.point_of_run, self.sweep, upto, self.state.get("last_step")):
            self.run.log(row, step=step)
            self.state["last_step"] = step

    def close(self, status: str = "completed") -> None:
        self.run.summary["pgrun_status"] = status
        self.run.finish(exit_code=0 if status == "completed" else 1)
