"""The run directory's rules: never clobber another run; resume exactly where a run stopped.

- A directory that already holds metrics.csv belongs to another run: starting a new run there
  raises RunDirExists (nothing is touched) unless `overwrite=true`, which first removes that
  run's outputs. `.hydra/` is written by pgrun after this check (config.yaml sets Hydra's
  `hydra.output_subdir: null`), so a refused run does not even replace the old run's config.
- `resume=<run dir>` continues that run from its latest checkpoint with the run's own config;
  only RESUMABLE keys may change (e.g. `iterations` to extend it). Its metrics.csv is cut back
  to the checkpoint's iteration (a torn last line included) and appended to.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import os
import shutil
import typing

from omegaconf import OmegaConf

from pgrun.config.schema import Config
from pgrun.config.validate import flatten
from pgrun.errors import ConfigError, RunDirExists

# Keys that may differ between a run and its resumption: none changes what an iteration computes.
RESUMABLE = ("iterations", "progress", "checkpoint_every", "log_every", "logger", "resume", "overwrite")
OUTPUTS = ("metrics.csv", "summary.json", "eval.json", "checkpoints", "tensorboard", "videos", "wandb", "loggers.json")


def prepare(cfg: Config, out_dir: str) -> str:
    """Check (and for overwrite=true, clear) the directory the run will write; return it."""
    if cfg.resume:
        run_dir = str(cfg.resume)
        if not os.path.isfile(os.path.join(run_dir, "metrics.csv")):
            raise ConfigError(f"resume={run_dir}: not a pgrun run directory (no metrics.csv there).")
        return run_dir
    if os.path.exists(os.path.join(out_dir, "metrics.csv")):
        if not cfg.overwrite:
            raise RunDirExists(
                f"{out_dir} already holds another run's metrics.csv; refusing to overwrite it (its files are "
                "untouched). Choose another directory (hydra.run.dir=..., or hydra.sweep.dir=... for a -m "
                "multirun), continue that run with "
                f"resume={out_dir}, or replace it with overwrite=true.")
        for name in OUTPUTS:
            path = os.path.join(out_dir, name)
            if os.path.isdir(path):
                shutil.rmtree(path)
            elif os.path.exists(path):
                os.remove(path)
    os.makedirs(out_dir, exist_ok=True)
    return out_dir


_NO_DEFAULT = object()


def _schema_default(dotted: str) -> typing.Any:
    """The Config schema's default of `dotted` (e.g. `estimator.baseline_decay`), or _NO_DEFAULT."""
    node: typing.Any = Config
    for part in dotted.split("."):
        if not (isinstance(node, type) and dataclasses.is_dataclass(node)):
            return _NO_DEFAULT
        fields = {f.name: f for f in dataclasses.fields(node)}
        if part not in fields:
            return _NO_DEFAULT
        f, node = fields[part], typing.get_type_hints(node)[part]
    if f.default is not dataclasses.MISSING:
        return f.default
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else _NO_DEFAULT


def _differences(a: dict, b: dict) -> list[str]:
    """Keys whose values differ between config a and the stored config b, except RESUMABLE ones and
    keys that pgrun gained after b was saved (absent from b) that a leaves at their schema default."""
    fa, fb = flatten(a), flatten(b)
    keys = sorted(set(fa) | set(fb))
    return [k for k in keys if k.split(".")[0] not in RESUMABLE and fa.get(k, "<unset>") != fb.get(k, "<unset>")
            and not (k not in fb and k in fa and fa[k] == _schema_default(k))]


def check_resume_config(cfg: Config, stored: dict) -> None:
    """ConfigError when cfg differs from the checkpointed run's config beyond RESUMABLE keys."""
    diff = _differences(cfg.to_dict(), stored)
    schedule = stored.get("optimizer", {}).get("schedule", "constant")
    if schedule != "constant" and int(cfg.iterations) != int(stored.get("iterations", cfg.iterations)):
        raise ConfigError(
            f"resume={cfg.resume} with iterations={cfg.iterations}: the run's optimizer.schedule={schedule} "
            f"decays the step size to 0 at its own iterations={stored.get('iterations')}, so extending it "
            "would not continue that schedule; resume with its own iterations, or start the run with "
            "optimizer.schedule=constant to extend it later.")
    if diff:
        raise ConfigError(
            f"resume={cfg.resume}: the config differs from the run's own in {', '.join(diff[:6])}"
            f"{' ...' if len(diff) > 6 else ''}; a resumed run continues with its own config, and only "
            f"{', '.join(RESUMABLE)} may change.")


def _same_value(cfg, stored, key: str) -> bool:
    """Whether `key` (a dotted key or a config group) has the same value in both configs."""
    a, b = OmegaConf.select(cfg, key, default=None), OmegaConf.select(stored, key, default=None)
    to_py = lambda v: OmegaConf.to_container(v, resolve=True) if OmegaConf.is_config(v) else v  # noqa: E731
    return a is not None and to_py(a) == to_py(b)


def resume_config(cfg, overrides: list[str]):
    """The config of a resumed run: the checkpointed run's own, with the command line's RESUMABLE keys.

    `overrides` are Hydra's task overrides (`iterations=20`, ...); any other key is a ConfigError
    unless it repeats the run's own value (so the original command line plus `resume=` works).
    """
    from pgrun.runner.checkpoint import latest_step, read_meta

    run_dir = str(cfg.resume)
    if latest_step(run_dir) is None:
        raise ConfigError(f"resume={run_dir}: no checkpoint under {os.path.join(run_dir, 'checkpoints')}.")
    stored = OmegaConf.create(read_meta(run_dir)["config"])
    for ov in overrides:
        key = ov.lstrip("+~").split("=", 1)[0]
        if key.startswith("hydra.") or key.startswith("hydra/"):
            continue
        if key.split(".")[0] not in RESUMABLE:
            if _same_value(cfg, stored, key):
                continue  # the command line repeats the run's own value: nothing changes
            raise ConfigError(
                f"resume={run_dir} continues that run with its own config, but the command line also sets "
                f"{key}; only {', '.join(RESUMABLE)} may change on resume (start a new run to change {key}).")
        if key in ("resume", "overwrite") or OmegaConf.select(cfg, key, default=None) is None:
            continue
        OmegaConf.update(stored, key, OmegaConf.select(cfg, key), force_add=True)
    OmegaConf.update(stored, "resume", run_dir, force_add=True)
    return stored


def truncate_metrics(path: str, iteration: int, columns: list[str]) -> list[dict]:
    """Cut metrics.csv back to rows with iteration <= `iteration` (and drop a torn last line);
    return the kept rows. The file is replaced atomically."""
    with open(path, newline="") as f:
        text = f.read()
    lines = text.split("\n")
    complete, header = lines[:-1], lines[0]  # text after the last newline is a torn row
    if header.split(",") != list(columns):
        raise ConfigError(
            f"{path} has columns {header} but this run writes {','.join(columns)}; it cannot be resumed "
            "by this pgrun version.")
    i_col = columns.index("iteration")
    kept = [ln for ln in complete[1:] if ln and int(ln.split(",")[i_col]) <= iteration]
    tmp = path + ".tmp"
    with open(tmp, "w", newline="") as f:
        f.write("\n".join([header, *kept]) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return list(csv.DictReader(io.StringIO("\n".join([header, *kept]) + "\n")))


def save_hydra_files(cfg, output_dir: str) -> None:
    """Write Hydra's record of the job (.hydra/config.yaml, hydra.yaml, overrides.yaml), as Hydra
    itself would with hydra.output_subdir=.hydra, once the directory is known to be ours."""
    from hydra.core.hydra_config import HydraConfig

    hydra_dir = os.path.join(output_dir, ".hydra")
    os.makedirs(hydra_dir, exist_ok=True)
    files = {"config.yaml": cfg, "hydra.yaml": HydraConfig.instance().cfg,
             "overrides.yaml": HydraConfig.get().overrides.task}
    for name, node in files.items():
        with open(os.path.join(hydra_dir, name), "w", encoding="utf-8") as f:
            f.write(OmegaConf.to_yaml(node))
