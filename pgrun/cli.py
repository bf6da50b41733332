"""`pgrun`: the Hydra app. Thin: check the command line, compose and load the config, run, say
what happened, map failures to exit codes.

Order of a command: `main` rewrites and checks the arguments, then composes and validates the
config of every job (`precheck`) before Hydra runs: a refused command exits 2 and leaves no
directory behind. Hydra then makes the run directory and calls `_main`, which runs and ends with
one line (`runner.summary.result_line`), on stderr and in the run directory's `cli.log`.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from pgrun.config import config_dir, load, register_configs
from pgrun.config.compose import composition_message
from pgrun.config.schema import closest_option, unknown_key_message
from pgrun.errors import (
    EXIT_CONFIG,
    EXIT_DIVERGED,
    EXIT_INTERRUPTED,
    EXIT_TERMINATED,
    ConfigError,
    MissingExtra,
    RunDirExists,
    TrainingDiverged,
)
from pgrun.runner.interrupt import Terminated

CONFIG_DIR = config_dir()
STARTED = time.time()  # a run directory whose mtime is older than this was not made by this process
LOG = logging.getLogger("pgrun.cli")

register_configs()


def _log_to_console_and_run_dir() -> None:
    """pgrun's lines go to stderr as `pgrun: ...` (as they always did) and, with a timestamp, to the
    run directory's log file through Hydra's job-logging file handler (`<run dir>/cli.log`)."""
    for h in list(LOG.handlers):
        LOG.removeHandler(h)  # a previous job's (Hydra's basic launcher runs every job in this process)
    console = logging.StreamHandler(sys.stderr)
    console.setFormatter(logging.Formatter("pgrun: %(message)s"))
    LOG.addHandler(console)
    for h in logging.getLogger().handlers:
        if isinstance(h, logging.FileHandler):
            LOG.addHandler(h)
    LOG.setLevel(logging.INFO)
    LOG.propagate = False  # not also on Hydra's console handler (stdout)
    # JAX starts its backend in the job now (pgrun no longer imports it before Hydra sets up logging), and
    # its INFO line about absent TPU/GPU plugins would reach Hydra's INFO handlers; a level the user set wins
    if not (logging.getLogger("jax").level or logging.getLogger("jax._src.xla_bridge").level
            or os.environ.get("JAX_LOGGING_LEVEL")):
        logging.getLogger("jax._src.xla_bridge").setLevel(logging.WARNING)


def _made_by_this_job(output_dir: str) -> bool:
    """Whether Hydra made `output_dir` for this job just now: it holds nothing (or only Hydra's
    empty log file) and is newer than this process."""
    try:
        names = set(os.listdir(output_dir))
        log = os.path.join(output_dir, "cli.log")
        return (names <= {"cli.log"} and (not names or os.path.getsize(log) == 0)
                and os.stat(output_dir).st_mtime >= STARTED)
    except OSError:
        return False


def _remove_refused(output_dir: str) -> None:
    """Remove the directory of a refused job if it holds only what this job wrote (.hydra/, cli.log)."""
    if set(os.listdir(output_dir)) <= {".hydra", "cli.log"}:
        shutil.rmtree(output_dir, ignore_errors=True)


def _interrupted_message(run_dir: str, sigterm: bool) -> str:
    """The Ctrl-C / SIGTERM line: where the metrics are and how to continue (when a checkpoint exists)."""
    import json

    from pgrun.runner.checkpoint import latest_step

    what = "terminated (SIGTERM)" if sigterm else "interrupted"
    try:
        with open(os.path.join(run_dir, "summary.json")) as f:
            s = json.load(f)
        what += f" after iteration {s['iterations']} of {s['config']['iterations']}"
    except (OSError, ValueError, KeyError, TypeError):
        pass
    metrics = os.path.join(run_dir, "metrics.csv")
    if latest_step(run_dir) is None:
        return f"{what}; metrics so far are in {metrics}; no checkpoint was written, so it cannot be resumed."
    return (f"{what}; metrics so far are in {metrics}, the state in {os.path.join(run_dir, 'checkpoints')} "
            f"(continue with resume={run_dir})")


def register_plugins() -> None:
    """pgrun's own Hydra plugin (the `ray` launcher, hydra_plugins/pgrun_ray_launcher), registered by
    hand: Hydra finds plugins by listing the `hydra_plugins` namespace, which an editable install's
    import hook does not list. The module imports Ray only when a sweep launches."""
    from hydra.core.plugins import Plugins

    try:
        from hydra_plugins.pgrun_ray_launcher.ray_launcher import RayLauncher
    except ImportError:  # an editable install made before the plugin existed: reinstall for hydra/launcher=ray
        return
    Plugins.instance().register(RayLauncher)


register_plugins()


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="config")
def _main(cfg: DictConfig) -> float | None:
    _log_to_console_and_run_dir()  # first: importing the runner starts JAX's backend, which logs
    # imported here, not at the top: `pgrun --help` and bad command lines stay quick
    from pgrun.runner.cache import enable_compilation_cache
    from pgrun.runner.loop import run
    from pgrun.runner.rundir import prepare, resume_config, save_hydra_files
    from pgrun.runner.summary import result_line

    _resume_gc()
    enable_compilation_cache()
    output_dir = HydraConfig.get().runtime.output_dir
    fresh = _made_by_this_job(output_dir)
    run_dir = output_dir
    try:
        resuming = bool(cfg.get("resume"))
        if resuming:
            cfg = resume_config(cfg, list(HydraConfig.get().overrides.task))
            run_dir = os.path.abspath(str(cfg.resume))
        config = load(cfg)  # the one validation: typed from here on
        if not resuming:
            prepare(config, output_dir)  # refuse another run's directory before writing anything
        save_hydra_files(cfg, output_dir)
        summary = run(config, output_dir)
    except ConfigError as e:
        LOG.error(f"config error: {e}")
        if fresh and not isinstance(e, RunDirExists):
            _remove_refused(output_dir)
        sys.exit(EXIT_CONFIG)
    except TrainingDiverged as e:
        LOG.error(str(e))
        sys.exit(EXIT_DIVERGED)
    except KeyboardInterrupt as e:
        sigterm = isinstance(e, Terminated)
        LOG.error(_interrupted_message(run_dir, sigterm))
        sys.exit(EXIT_TERMINATED if sigterm else EXIT_INTERRUPTED)
    LOG.info(result_line(summary, run_dir))
    return summary.get("final_return_mean")  # the objective of Hydra sweepers such as Optuna


GROUPS = ("env", "policy", "estimator", "optimizer", "experiment")


def group_options(group: str) -> list[str]:
    """The options of a config group: the YAML files under configs/<group>/ (recursively)."""
    root = Path(CONFIG_DIR) / group
    out, stack = [], [(root, "")]
    while stack:
        node, prefix = stack.pop()
        if not node.is_dir():
            continue
        for child in node.iterdir():
            if child.is_dir():
                stack.append((child, f"{prefix}{child.name}/"))
            elif child.name.endswith(".yaml"):
                out.append(prefix + child.name[: -len(".yaml")])
    return sorted(out)


def rewrite_argv(argv: list[str]) -> list[str]:
    """Check group choices and key names before Hydra (one clear paragraph instead of a
    search-path dump or Hydra's multi-line override error) and let `env.params.<name>=v` add
    keys to the (empty by default) params dict."""
    out = []
    for arg in argv:
        key, eq, value = arg.partition("=")
        bare = key.lstrip("+~")
        if eq and bare in GROUPS and not arg.startswith("~") and value and "(" not in value:
            valid = group_options(bare)
            for item in value.split(","):  # a multirun sweep env=A,B: every item
                if item not in valid:
                    close = closest_option(item, valid)
                    hint = f" Did you mean {bare}={close}?" if close else ""
                    raise SystemExit(
                        f"pgrun: config error: {bare}={item} is not a known option of the '{bare}' group.{hint} "
                        f"Valid choices: {', '.join(valid)}.")
        if eq and not key.startswith("~") and "/" not in key and bare not in GROUPS and not bare.startswith("hydra."):
            problem = unknown_key_message(bare)
            if problem:
                raise SystemExit(f"pgrun: config error: {problem}")
        if eq and key.startswith("env.params."):
            arg = "++" + arg
        out.append(arg)
    return out


def expand_gym_env(args: list[str]) -> list[str]:
    """Rewrite `env=gym:<id>` to `env=gym env.id=<id>` (a gymnasium id is no config group option),
    `env=func:<module>:<Class>` to `env=func env.id=<module>:<Class>`, `env=gymnax:<id>` to `env=gymnax env.id=<id>`.

    A sweep `env=gym:A,gym:B` becomes `env=gym env.id=A,B`; other items pass unchanged.
    """
    out = []
    for a in args:
        key, _, value = a.partition("=")
        ids = value.split(",")
        if key == "env" and all(i.startswith("gym:") and len(i) > 4 for i in ids):
            out += ["env=gym", "env.id=" + ",".join(i[4:] for i in ids)]
        elif key == "env" and all(i.startswith("func:") and len(i) > 5 for i in ids):
            out += ["env=func", "env.id=" + ",".join(i[5:] for i in ids)]
        elif key == "env" and all(i.startswith("gymnax:") and len(i) > 7 for i in ids):
            out += ["env=gymnax", "env.id=" + ",".join(i[7:] for i in ids)]
        else:
            out.append(a)
    return out


# the optional packages of Hydra plugins -> pgrun's extra that installs them
PLUGIN_EXTRAS = {"hydra_plugins.hydra_joblib_launcher": ("launchers", "hydra-joblib-launcher"),
                 "joblib": ("launchers", "hydra-joblib-launcher"),
                 "hydra_plugins.hydra_submitit_launcher": ("launchers", "hydra-submitit-launcher"),
                 "submitit": ("launchers", "hydra-submitit-launcher"),
                 "hydra_plugins.hydra_ray_launcher": ("ray", "the Ray launcher"), "ray": ("ray", "Ray")}
MAX_PRECHECKED_JOBS = 64  # of a multirun; the rest are checked by their jobs


def _split(args: list[str]) -> tuple[list[str], bool, str | None, str] | None:
    """(overrides, multirun?, --config-path, --config-name) of a command line; None when it runs
    nothing or uses a flag this check does not follow (Hydra then handles it alone)."""
    overrides, multirun, path, name = [], False, None, "config"
    it = iter(args)
    for a in it:
        flag, eq, val = a.partition("=")
        if a in ("-m", "--multirun"):
            multirun = True
        elif a in ("-r", "--run"):
            pass
        elif flag in ("-cp", "--config-path"):
            path = val if eq else next(it, "")
        elif flag in ("-cn", "--config-name"):
            name = val if eq else next(it, "")
        elif a.startswith("-"):  # --help, --cfg job, --info, ...: runs nothing, or a flag not followed here
            return None
        else:
            overrides.append(a)
    if path is not None and not os.path.isabs(path):
        return None  # Hydra resolves a relative --config-path against pgrun's package: leave it to Hydra
    return overrides, multirun, path, name


def _check_plugin(what: str, target: str, instead: str) -> None:
    """MissingExtra when the module of a launcher's / sweeper's `_target_` cannot be imported."""
    import importlib
    import importlib.util

    module = target.rpartition(".")[0]
    try:
        importlib.import_module(module)
    except ImportError as e:
        missing = (e.name or module)
        hit = next((v for k, v in PLUGIN_EXTRAS.items() if missing == k or missing.startswith(k + ".")
                    or module.startswith(k + ".")), None)
        if hit is None:  # hydra_plugins.hydra_optuna_sweeper -> pip install hydra-optuna-sweeper
            top = missing.split(".")[1] if missing.startswith("hydra_plugins.") else missing.split(".")[0]
            raise ConfigError(f"{what} needs the Python package {missing}, which is not installed: pip install "
                              f"{top.replace('_', '-')} (the plugin class is {target}); or {instead}.") from None
        raise MissingExtra.needs(what, hit[1], hit[0], instead) from None
    if module.startswith("hydra_plugins.pgrun_ray_launcher") and importlib.util.find_spec("ray") is None:
        raise MissingExtra.needs(what, "Ray", "ray", instead)  # pgrun's plugin imports Ray only at launch


def _job_overrides(overrides: list[str], multirun: bool) -> list[list[str]]:
    """The override lists of the jobs the command runs: one, or a multirun's combinations (as
    Hydra's basic sweeper expands `a=1,2 b=x,y`); for another sweeper, the values it starts from."""
    if not multirun:
        return [overrides]
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
        jobs = BasicSweeper.split_arguments(parsed, None)[0]
    except Exception:  # an interval or another sweeper's syntax: check what is not swept
        parsed = OverridesParser.create().parse_overrides(overrides)
        return [[o.input_line for o in parsed if not o.is_sweep_override() and o.input_line]]
    return [list(job) for job in jobs[:MAX_PRECHECKED_JOBS]]


Mode = Any  # hydra.types.RunMode | None, or UNKNOWN (the pre-check did not compose it)
UNKNOWN = object()


def precheck(args: list[str]) -> Mode:
    """Compose and accept (`pgrun.runner.preflight.accept`) the config of every job the command
    line runs before Hydra makes a directory; in a multirun, check that the launcher's and
    sweeper's plugins are installed. ConfigError names the problem; nothing is written.
    Returns the composed `hydra.mode` of a single run (None unless a config sets it), which
    `hydra_mode_known` hands to Hydra; UNKNOWN for a multirun or a command line not checked."""
    split = _split(args)
    if split is None:
        return UNKNOWN
    mode: Mode = UNKNOWN
    overrides, multirun, path, name = split
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from pgrun.config import compose

    try:
        for i, job in enumerate(_job_overrides(overrides, multirun)):
            cfg = compose(job, config_path=path, config_name=name, hydra=not multirun or i == 0)
            from pgrun.runner.preflight import accept  # imports JAX only after the checks that need none

            if multirun and i == 0:
                choices = cfg.hydra.runtime.choices
                if "_target_" in cfg.hydra.launcher:
                    _check_plugin(f"hydra/launcher={choices.get('hydra/launcher')}", cfg.hydra.launcher._target_,
                                  "leave out hydra/launcher= to run the jobs one after another")
                if "_target_" in cfg.hydra.sweeper:
                    _check_plugin(f"hydra/sweeper={choices.get('hydra/sweeper')}", cfg.hydra.sweeper._target_,
                                  "leave out hydra/sweeper=")
            if not multirun:
                mode = cfg.hydra.mode
            if "hydra" in cfg:
                with open_dict(cfg):
                    del cfg["hydra"]
            accept(cfg, [o for o in job if not o.lstrip("+~").startswith("hydra")])
    except (HydraException, OmegaConfBaseException) as e:
        raise ConfigError(composition_message(e)) from None
    finally:
        from hydra.core.global_hydra import GlobalHydra

        GlobalHydra.instance().clear()  # Hydra's app initializes its own
    return mode


@contextlib.contextmanager
def hydra_mode_known(mode: Mode) -> Iterator[None]:
    """Within this block Hydra's app takes `mode` as the composed config's `hydra.mode` instead of
    composing the whole config once more only to read it (`Hydra.get_mode`, a private method,
    called by `hydra.main` before the run's own compose: 0.07 s, 7 % of `import jax`). The
    pre-check composed the same command line already; UNKNOWN leaves Hydra as it is."""
    if mode is UNKNOWN:
        yield
        return
    from hydra._internal.hydra import Hydra

    own = Hydra.get_mode
    Hydra.get_mode = lambda self, *args, **kwargs: mode  # type: ignore[method-assign]
    try:
        yield
    finally:
        Hydra.get_mode = own  # type: ignore[method-assign]


def quick_help(args: list[str]) -> str | None:
    """The text of `pgrun --help [overrides]`, as Hydra's app help prints it (the help template of
    configs/hydra/help/ with $CONFIG, the composed config without Hydra's keys), from one compose:
    Hydra's own --help also lists every config group for the template's other placeholders, which
    costs more than the rest of the command. None (Hydra answers) for any other flag, a template
    that uses another placeholder, or a command line that does not compose."""
    import string

    from omegaconf import OmegaConf

    from pgrun.config import compose

    flags = [a for a in args if a.startswith("-")]
    if flags not in (["--help"], ["-h"]) or flags[0] not in (args[0], args[-1]):  # Hydra's parser takes the
        return None                                                             # overrides in one run
    try:
        cfg = compose([a for a in args if not a.startswith("-")], hydra=True)
        template = string.Template(cfg.hydra.help.template)
        if {m[1] or m[2] for m in template.pattern.findall(template.template) if m[1] or m[2]} != {"CONFIG"}:
            return None
        with open_dict(cfg):
            del cfg["hydra"]
        return template.substitute(CONFIG=OmegaConf.to_yaml(cfg))
    except Exception:  # Hydra reports the problem as it would
        return None
    finally:
        from hydra.core.global_hydra import GlobalHydra

        GlobalHydra.instance().clear()


def _resume_gc() -> None:
    """Python's cyclic garbage collector back on, if `main` turned it off for the start-up, after
    freezing what the imports made (`gc.freeze`: long-lived modules, never walked again)."""
    if not gc.isenabled():
        gc.freeze()
        gc.enable()


def main() -> None:
    # The start-up (Hydra, JAX, Flax, Optax imports; composing) makes about a million long-lived objects and
    # little garbage, and each full collection on the way walks all of them: the collector stays off until
    # the job has imported what it runs (`_resume_gc`). A multirun keeps it on: its pre-check composes and
    # builds every job. At the end, what exists is frozen, so the interpreter's last collections at exit skip it.
    if not {"-m", "--multirun"} & set(sys.argv[1:]):
        gc.disable()
    try:
        _command()
    finally:
        gc.freeze()


def _command() -> None:
    try:
        args = rewrite_argv(expand_gym_env(sys.argv[1:]))
    except SystemExit as e:
        print(e.code, file=sys.stderr)
        sys.exit(EXIT_CONFIG)
    text = quick_help(args)
    if text is not None:
        print(text)
        return
    try:
        mode = precheck(args)
    except ConfigError as e:
        print(f"pgrun: config error: {e}", file=sys.stderr)
        sys.exit(EXIT_CONFIG)
    sys.argv[1:] = args
    with hydra_mode_known(mode):
        _main()


if __name__ == "__main__":
    main()
