"""The experiment loggers `cfg.logger` turns on (TensorBoard, W&B, Trackio), written to together
by both host loops (`runner.loop`, `runner.host_loop`) after each chunk's metrics.csv rows.

Each backend is imported only when its flag is set (config validation has already checked that
its package is installed). `<run dir>/loggers.json` keeps what a resume needs: the W&B run id,
the Trackio run name, and the last step each logged (a resume re-runs the iterations after the
checkpoint; those already logged before a kill are not logged twice).
"""

from __future__ import annotations

import json
import os
from typing import Any

from pgrun.config.schema import Config

STATE_FILE = "loggers.json"


def run_name(run_dir: str) -> str:
    """The name a logger shows for the run: the run directory's last two parts, e.g.
    `2026-12-02_10-00-00` for Hydra's outputs/2026-12-02/10-00-00."""
    parent, base = os.path.split(os.path.abspath(run_dir))
    return f"{os.path.basename(parent)}_{base}" if os.path.basename(parent) else base


class Loggers:
    def __init__(self, cfg: Config, run_dir: str, point_of_run: list[int], sweep: bool, resume_step: int | None):
        """`point_of_run` [R]: each run's sweep point; `resume_step`: the checkpoint's iteration on resume=."""
        lc = cfg.logger
        self.path = os.path.join(run_dir, STATE_FILE)
        self.state: dict[str, dict] = {}
        if resume_step is not None and os.path.isfile(self.path):
            with open(self.path) as f:
                self.state = json.load(f)
        self.backends: list[Any] = []
        try:
            if lc.tensorboard:
                from pgrun.runner.tensorboard import TensorBoardLogger

                self.backends.append(TensorBoardLogger(run_dir, point_of_run, sweep, resume_step))
            if lc.wandb:
                from pgrun.runner.wandb_logger import WandbLogger

                self.backends.append(WandbLogger(run_dir, run_name(run_dir), cfg.to_dict(), lc.wandb_project,
                                                 lc.wandb_mode, point_of_run, sweep,
                                                 self.state.setdefault("wandb", {})))
            if lc.trackio:
                from pgrun.runner.trackio_logger import TrackioLogger

                self.backends.append(TrackioLogger(run_name(run_dir), cfg.to_dict(), lc.trackio_project, point_of_run,
                                                   sweep, self.state.setdefault("trackio", {})))
        except BaseException:
            self.close("failed")
            raise
        self._save()

    def write_chunk(self, m: dict, upto: int | None = None) -> None:
        """Host metrics {name: [R, K]} of one chunk; active iterations (< upto) only."""
        for b in self.backends:
            b.write_chunk(m, upto)
        self._save()

    def close(self, status: str = "completed") -> None:
        """Finish every backend (status: completed, diverged, interrupted), each even if another fails."""
        errors = []
        for b in self.backends:
            try:
                b.close(status)
            except Exception as e:  # close the others first
                errors.append(e)
        self.backends = []
        if errors:
            raise errors[0]

    def _save(self) -> None:
        if self.state:
            tmp = self.path + ".tmp"
            with open(tmp, "w") as f:
                json.dump(self.state, f, indent=1)
            os.replace(tmp, self.path)


def open_loggers(cfg: Config, run_dir: str, point_of_run: list[int], sweep: bool,
                 resume_step: int | None) -> Loggers | None:
    """The loggers of cfg.logger, or None when none is on."""
    lc = cfg.logger
    if not (lc.tensorboard or lc.wandb or lc.trackio):
        return None
    return Loggers(cfg, run_dir, point_of_run, sweep, resume_step)
