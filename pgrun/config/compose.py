"""Where pgrun's Hydra configs live, and composing them in-process (no Hydra app, no output dir).

`compose(overrides)` runs `hydra.compose("config", overrides)` over `config_dir()` with the
typed schemas of `register_configs()`, as the `pgrun` command line would; `load` then turns
the result into a validated `Config`.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from hydra import compose as hydra_compose
from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig

from pgrun.config.schema import closest_option, register_configs, type_error_message


def config_dir() -> str:
    """The configs of *this* pgrun: the checkout's configs/ when run from source (so a worktree
    does not pick up another checkout's configs through an editable install), else the package's."""
    source = Path(__file__).resolve().parents[2] / "configs"
    if (source / "config.yaml").is_file() and (source / "env").is_dir():
        return str(source)
    return str(resources.files("pgrun.configs"))


def compose(overrides: list[str] | tuple[str, ...] = (), *, config_path: str | None = None,
            config_name: str = "config", hydra: bool = False) -> DictConfig:
    """The pgrun config with Hydra-style `overrides` applied (e.g. ["env=Bandit", "seed=3"]).

    As on the `pgrun` command line, `env.params.<name>=v` adds a key to the (empty by
    default) env.params dict. `config_path` / `config_name`: another primary config (an
    absolute directory, as `pgrun --config-path ... --config-name ...`); `hydra=True` keeps
    Hydra's own settings (launcher, sweeper, run dir) under the `hydra` key.
    """
    overrides = [("++" + o) if o.startswith("env.params.") else o for o in overrides]
    register_configs()
    if GlobalHydra.instance().is_initialized():
        GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=config_path or config_dir(), version_base="1.3"):
        return hydra_compose(config_name, overrides=list(overrides), return_hydra_config=hydra)


def composition_message(e: Exception) -> str:
    """One paragraph for Hydra's failure to compose: a value of the wrong type names the key, the
    value and the type it takes; an unknown option of a group (e.g. hydra/launcher=) its choices;
    an override that does not parse, itself; anything else is Hydra's message on one line."""
    import re

    from hydra.errors import MissingConfigException, OverrideParseException
    from omegaconf.errors import ValidationError

    if isinstance(e, MissingConfigException) and e.missing_cfg_file and e.options:
        group, _, value = e.missing_cfg_file.rpartition("/")
        close = closest_option(value, list(e.options))
        hint = f" Did you mean {group}={close}?" if close else ""
        return (f"{group}={value} is not a known option of the '{group}' group.{hint} "
                f"Valid choices: {', '.join(e.options)}.")
    if isinstance(e, OverrideParseException):
        return f"{e.override} is not a valid override ({' '.join(e.message.split())})."
    cause = e.__cause__ if isinstance(e.__cause__, ValidationError) else e
    key = re.sub(r"\[\d+\]$", "", str(getattr(cause, "full_key", "") or ""))  # policy.hidden[0] -> policy.hidden
    text = str(e)
    if isinstance(cause, ValidationError) and key:
        line = text.split("Error merging override ", 1)[-1].splitlines()[0]
        value = line.partition("=")[2] if line.lstrip("+~").split("=")[0] == key else ""
        if value:
            return type_error_message(key, value)
        return " ".join(str(cause).split())
    return " ".join(text.split())
