"""`pgrun`: the Hydra app. Thin: compose and load the config, run, map failures to exit codes."""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from pgrun.config import config_dir, load, register_configs
from pgrun.config.schema import unknown_key_message
from pgrun.errors import EXIT_CONFIG, EXIT_DIVERGED, EXIT_INTERRUPTED, EXIT_TERMINATED, ConfigError, TrainingDiverged
from pgrun.runner.interrupt import Terminated

CONFIG_DIR = config_dir()

register_configs()


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
    # imported here, not at the top: `pgrun --help` and bad command lines stay quick
    from pgrun.runner.cache import enable_compilation_cache
    from pgrun.runner.loop import run
    from pgrun.runner.rundir import prepare, resume_config, save_hydra_files

    enable_compilation_cache()
    output_dir = HydraConfig.get().runtime.output_dir
    try:
        resuming = bool(cfg.get("resume"))
        if resuming:
            cfg = resume_config(cfg, list(HydraConfig.get().overrides.task))
        config = load(cfg)  # the one validation: typed from here on
        if not resuming:
            prepare(config, output_dir)  # refuse another run's directory before writing anything
        save_hydra_files(cfg, output_dir)
        summary = run(config, output_dir)
    except ConfigError as e:
        print(f"pgrun: config error: {e}", file=sys.stderr)
        sys.exit(EXIT_CONFIG)
    except TrainingDiverged as e:
        print(f"pgrun: {e}", file=sys.stderr)
        sys.exit(EXIT_DIVERGED)
    except KeyboardInterrupt as e:
        sigterm = isinstance(e, Terminated)
        print(f"pgrun: {'terminated (SIGTERM)' if sigterm else 'interrupted'}; metrics so far are in "
              "metrics.csv, the state in checkpoints/ (continue with resume=<run dir>)", file=sys.stderr)
        sys.exit(EXIT_TERMINATED if sigterm else EXIT_INTERRUPTED)
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
        if eq and bare in GROUPS and not arg.startswith("~") and "," not in value and value:
            valid = group_options(bare)
            if value not in valid:
                raise SystemExit(
                    f"pgrun: config error: {bare}={value} is not a known option of the '{bare}' group; "
                    f"valid choices: {', '.join(valid)}.")
        if eq and key == bare and "/" not in key and bare not in GROUPS and not key.startswith("hydra."):
            problem = unknown_key_message(key)
            if problem:
                raise SystemExit(f"pgrun: config error: {problem}")
        if eq and key.startswith("env.params."):
            arg = "++" + arg
        out.append(arg)
    return out


def expand_gym_env(args: list[str]) -> list[str]:
    """Rewrite `env=gym:<id>` to `env=gym env.id=<id>` (a gymnasium id is no config group option),
    and `env=func:<module>:<Class>` to `env=func env.id=<module>:<Class>`.

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
        else:
            out.append(a)
    return out


def main() -> None:
    try:
        sys.argv[1:] = rewrite_argv(expand_gym_env(sys.argv[1:]))
    except SystemExit as e:
        print(e.code, file=sys.stderr)
        sys.exit(EXIT_CONFIG)
    _main()


if __name__ == "__main__":
    main()
