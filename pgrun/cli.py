"""`pgrun`: the Hydra app. Thin: resolve the config, run, map failures to exit codes."""

from __future__ import annotations

import sys
from importlib import resources
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig

from pgrun.config import ConfigError, register_configs



def _config_dir() -> str:
    """The configs of *this* pgrun: the checkout's configs/ when run from source (so a worktree
    does not pick up another checkout's configs through an editable install), else the package's."""
    source = Path(__file__).resolve().parent.parent / "configs"
    if (source / "config.yaml").is_file() and (source / "env").is_dir():
        return str(source)
    return str(resources.files("pgrun.configs"))


CONFIG_DIR = _config_dir()
EXIT_CONFIG, EXIT_DIVERGED, EXIT_INTERRUPTED = 2, 3, 130

register_configs()


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="config")
def _main(cfg) -> float | None:
    from pgrun.config import validate
    from pgrun.rundir import prepare, resume_config, save_hydra_files
    from pgrun.run import TrainingDiverged, enable_compilation_cache, run

    enable_compilation_cache()
    output_dir = HydraConfig.get().runtime.output_dir
    try:
        if cfg.get("resume"):
            cfg = resume_config(cfg, list(HydraConfig.get().overrides.task))
        else:
            validate(cfg)
            prepare(cfg, output_dir)  # refuse another run's directory before writing anything
        save_hydra_files(cfg, output_dir)
        summary = run(cfg, output_dir)
    except ConfigError as e:
        print(f"pgrun: config error: {e}", file=sys.stderr)
        sys.exit(EXIT_CONFIG)
    except (KeyError, TypeError) as e:  # e.g. env.params with an unknown key
        if "valid" not in str(e):
            raise
        print(f"pgrun: config error: {e.args[0]}", file=sys.stderr)
        sys.exit(EXIT_CONFIG)
    except TrainingDiverged as e:
        print(f"pgrun: {e}", file=sys.stderr)
        sys.exit(EXIT_DIVERGED)
    except KeyboardInterrupt:
        print("pgrun: interrupted; metrics so far are in metrics.csv, the state in checkpoints/ "
              "(continue with resume=<run dir>)", file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)
    return summary.get("final_return_mean")  # the objective of Hydra sweepers such as Optuna


def main() -> None:
    _main()


if __name__ == "__main__":
    main()
