"""`pgrun-tune`: hyperparameter search with Optuna; each trial is one pgrun run of all its seeds.

    pgrun-tune tune.params.optimizer.lr='log(1e-4,1e-1)' tune.params.gamma='[0.95,0.99,0.999]' \\
        tune.trials=20 env=Acrobot num_seeds=8

A trial composes the pgrun config from the other arguments plus the values Optuna suggests
for the `tune.params` keys, trains its `num_seeds` seeds vmapped in one compiled program
(`pgrun.runner.loop.run`, the same as `pgrun`), and is scored by the interquartile mean over
seeds of the per-seed final returns (summary.json's `final_return_per_seed`). The study lives
in `tune.storage` (a journal file, or an RDB URL), so several processes or cluster jobs given
the same storage and `tune.study` share one study. docs/sweeps.md has the options.
"""

from __future__ import annotations

import json
import os
import re
import socket
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pgrun.cli import GROUPS, expand_gym_env, group_options, rewrite_argv
from pgrun.config import compose, load
from pgrun.config.schema import unknown_key_message
from pgrun.errors import EXIT_CONFIG, EXIT_INTERRUPTED, ConfigError, TrainingDiverged
from pgrun.runner.stats import iqm as trimmed_iqm

DISTRIBUTIONS = ("float(lo,hi)", "log(lo,hi)", "int(lo,hi)", "choice(a,b,...)", "[a,b,...]")
OPTIONS = ("params.<key>", "trials", "storage", "study", "dir", "sampler", "seed")
SAMPLERS = ("tpe", "random")


class TuneError(ConfigError):
    """A bad `pgrun-tune` argument: one paragraph naming the argument and the valid choices."""


def iqm(finals: np.ndarray | list[float]) -> float:
    """Interquartile mean of the per-seed final returns: the mean of the middle half.

    IQM(x) = mean(x_(k+1), ..., x_(n-k)) with x_(i) sorted ascending and k = floor(n / 4)
    (`runner.stats.iqm`: scipy.stats.trim_mean's 0.25, as rliable). x: [n seeds]; n < 4 keeps
    all seeds (the plain mean).
    """
    return float(trimmed_iqm(np.asarray(finals, np.float64)))


@dataclass(frozen=True)
class Param:
    """One searched key: `kind` float | log | int (low, high) or choice (choices)."""

    key: str
    kind: str
    low: float = 0.0
    high: float = 0.0
    choices: tuple = ()

    def suggest(self, trial) -> Any:
        if self.kind == "choice":
            primitive = all(isinstance(c, (int, float, str, bool)) or c is None for c in self.choices)
            picked = trial.suggest_categorical(self.key, list(self.choices if primitive else map(fmt, self.choices)))
            return picked if primitive else self.choices[[fmt(c) for c in self.choices].index(picked)]
        if self.kind == "int":
            return trial.suggest_int(self.key, int(self.low), int(self.high))
        return trial.suggest_float(self.key, self.low, self.high, log=self.kind == "log")

    def extremes(self) -> tuple:
        """The values whose configs are checked before any trial runs."""
        if self.kind == "choice":
            return self.choices
        if self.kind == "int":
            return (int(self.low), int(self.high))
        return (self.low, self.high)


def fmt(value: Any) -> str:
    """`value` as a Hydra override value (1e-05, [64,64], true, null, ppo)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(fmt(v) for v in value) + "]"
    return repr(value) if isinstance(value, float) else str(value)


def _values(text: str, arg: str) -> list:
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    try:
        values = OverridesParser.create().parse_override(f"x=[{text}]").value()
    except HydraException as e:
        raise TuneError(f"{arg}: cannot read the values '{text}' ({str(e).splitlines()[0]}); "
                        f"valid distributions: {', '.join(DISTRIBUTIONS)}.") from None
    assert isinstance(values, list)
    return values


def parse_param(key: str, spec: str) -> Param:
    """`tune.params.<key>=<spec>` -> Param; TuneError names the argument and the valid forms."""
    arg = f"tune.params.{key}={spec}"
    if key.startswith("sweep.") or key in ("seed", "num_seeds", "resume"):
        raise TuneError(f"{arg}: {key} cannot be searched (a trial's score is over its own num_seeds seeds; "
                        "for a vmapped grid use pgrun sweep.<key>=[...]). Search config keys such as "
                        "optimizer.lr, gamma, estimator, policy.hidden.")
    if key in GROUPS:
        pass  # a group choice: checked with its values below
    elif problem := unknown_key_message(key):
        raise TuneError(f"{arg}: {problem}")
    spec = spec.strip()
    m = re.fullmatch(r"(\w+)\((.*)\)", spec, re.S)
    if spec.startswith("["):
        kind, values = "choice", _values(spec[1:-1] if spec.endswith("]") else spec, arg)
    elif m and m.group(1) in ("float", "log", "int", "choice"):
        kind, values = m.group(1), _values(m.group(2), arg)
    else:
        raise TuneError(f"{arg}: '{spec}' is not a distribution; valid distributions: {', '.join(DISTRIBUTIONS)} "
                        "(e.g. tune.params.optimizer.lr='log(1e-4,1e-1)', tune.params.gamma='[0.95,0.99]').")
    if kind == "choice":
        if not values:
            raise TuneError(f"{arg}: a choice needs at least one value.")
        if key in GROUPS and (bad := [v for v in values if str(v) not in group_options(key)]):
            raise TuneError(f"{arg}: {', '.join(map(str, bad))} is not a known option of the '{key}' group; "
                            f"valid choices: {', '.join(group_options(key))}.")
        return Param(key, kind, choices=tuple(values))
    if key in GROUPS:
        raise TuneError(f"{arg}: {key} is a config group; search it with choice(...) of its options: "
                        f"{', '.join(group_options(key))}.")
    numeric = len(values) == 2 and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
    if not numeric or not values[0] < values[1]:
        raise TuneError(f"{arg}: {kind}(lo,hi) needs two numbers with lo < hi, got {spec}.")
    if kind == "log" and values[0] <= 0:
        raise TuneError(f"{arg}: log(lo,hi) needs lo > 0, got {spec}.")
    if kind == "int" and not all(float(v).is_integer() for v in values):
        raise TuneError(f"{arg}: int(lo,hi) needs whole numbers, got {spec}.")
    return Param(key, kind, float(values[0]), float(values[1]))


@dataclass
class Options:
    params: list[Param] = field(default_factory=list)
    overrides: list[str] = field(default_factory=list)  # the pgrun config of every trial
    trials: int = 20
    storage: str = ""  # "": <dir>/study.journal
    study: str = "pgrun"
    dir: str = ""  # "": outputs/tune/<date>/<time>
    sampler: str = "tpe"
    seed: int | None = None


def _int(arg: str, value: str, minimum: int) -> int:
    try:
        out = int(value)
    except ValueError:
        out = minimum - 1
    if out < minimum:
        raise TuneError(f"{arg}: expected a whole number >= {minimum}, got '{value}'.")
    return out


def parse_args(argv: list[str]) -> Options:
    """Split `tune.*` options from the pgrun overrides of every trial, and check both."""
    opts = Options()
    rest = []
    for arg in argv:
        key, eq, value = arg.partition("=")
        if not key.startswith("tune."):
            rest.append(arg)
            continue
        name = key[len("tune."):]
        if not eq:
            raise TuneError(f"{arg}: expected tune.<option>=<value>; options: {', '.join(OPTIONS)}.")
        if name.startswith("params."):
            opts.params.append(parse_param(name[len("params."):], value))
        elif name == "trials":
            opts.trials = _int(arg, value, 1)
        elif name == "seed":
            opts.seed = None if value == "null" else _int(arg, value, 0)
        elif name == "sampler":
            if value not in SAMPLERS:
                raise TuneError(f"{arg}: unknown sampler; valid choices: {', '.join(SAMPLERS)}.")
            opts.sampler = value
        elif name in ("storage", "study", "dir") and value:
            setattr(opts, name, value)
        else:
            raise TuneError(f"{arg} is not a pgrun-tune option; options: "
                            f"{', '.join('tune.' + o for o in OPTIONS)}.")
    if not opts.params:
        raise TuneError("pgrun-tune needs a search space: one tune.params.<key>=<distribution> or more "
                        f"(distributions: {', '.join(DISTRIBUTIONS)}), e.g. tune.params.optimizer.lr='log(1e-4,1e-1)'.")
    if len({p.key for p in opts.params}) < len(opts.params):
        raise TuneError("a key is given twice in tune.params.")
    try:
        opts.overrides = rewrite_argv(expand_gym_env(rest))
    except SystemExit as e:  # rewrite_argv's paragraph, prefixed "pgrun: config error: "
        raise TuneError(str(e.code).removeprefix("pgrun: config error: ")) from None
    if bad := [o for o in opts.overrides if o.split("=")[0].lstrip("+~").startswith(("sweep.", "resume"))]:
        raise TuneError(f"{bad[0]}: pgrun-tune runs one config per trial; search keys with "
                        "tune.params.<key>=<distribution> instead of sweep.* (and resume= continues a run, "
                        "not a study: rerun pgrun-tune with the same tune.storage).")
    opts.dir = opts.dir or os.path.join("outputs", "tune", time.strftime("%Y-%m-%d"), time.strftime("%H-%M-%S"))
    opts.storage = opts.storage or os.path.join(opts.dir, "study.journal")
    return opts


def trial_config(opts: Options, values: dict[str, Any]):
    """The loaded Config of one trial: the fixed overrides, then the suggested values."""
    searched = [f"{'+' if k == 'experiment' else ''}{k}={fmt(v)}" for k, v in values.items()]
    return load(compose([*opts.overrides, *searched])), searched


def check_space(opts: Options) -> None:
    """Load the config at every choice and at both ends of every range, before any trial runs."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    for p in opts.params:
        for v in p.extremes():
            try:
                trial_config(opts, {p.key: v})
            except (ConfigError, HydraException, OmegaConfBaseException) as e:
                raise TuneError(f"tune.params.{p.key}: the value {fmt(v)} makes a config that cannot run: {e}") \
                    from None


def open_storage(storage: str):
    """An RDB URL (sqlite:///..., postgresql://...) as is; else a journal file shared by file lock."""
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    if "://" in storage:
        return storage
    os.makedirs(os.path.dirname(os.path.abspath(storage)), exist_ok=True)
    return JournalStorage(JournalFileBackend(storage))


def objective(opts: Options, worker: str):
    from pgrun.runner.loop import run

    def score(trial) -> float:
        values = {p.key: p.suggest(trial) for p in opts.params}
        config, searched = trial_config(opts, values)
        run_dir = os.path.abspath(os.path.join(opts.dir, f"trial_{trial.number}"))
        trial.set_user_attr("run_dir", run_dir)
        trial.set_user_attr("worker", worker)
        trial.set_user_attr("overrides", [*opts.overrides, *searched])
        summary = run(config, run_dir)
        finals = [float(v) for v in summary["final_return_per_seed"].values()]
        value = iqm(finals)
        trial.set_user_attr("final_return_per_seed", finals)
        print(f"pgrun-tune: trial {trial.number}: IQM {value:.4g} over {len(finals)} seeds "
              f"({' '.join(searched)}) in {run_dir}", file=sys.stderr, flush=True)
        return value
    return score


def results(study, opts: Options) -> dict:
    """The study's best trial and every trial, for best.json."""
    import optuna

    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    out: dict[str, Any] = {"study": study.study_name, "storage": opts.storage, "score": "IQM of final_return_per_seed",
                           "trials_complete": len(done), "trials": [
                               {"number": t.number, "state": t.state.name, "value": t.value, "params": t.params,
                                **t.user_attrs} for t in study.trials]}
    if done:
        best = study.best_trial
        out.update({"best_trial": best.number, "best_value": best.value, "best_params": best.params,
                    "best_run_dir": best.user_attrs.get("run_dir"),
                    "best_command": "pgrun " + " ".join(best.user_attrs.get("overrides", []))})
    return out


def write_results(study, opts: Options) -> dict:
    out = results(study, opts)
    path = os.path.join(opts.dir, "best.json")
    tmp = f"{path}.{os.getpid()}.tmp"  # workers sharing the directory each write whole files
    with open(tmp, "w") as f:
        json.dump(out, f, indent=2)
    os.replace(tmp, path)
    if "best_trial" in out:
        print(f"pgrun-tune: best of {out['trials_complete']} trials: IQM {out['best_value']:.4g} (trial "
              f"{out['best_trial']}, {out['best_run_dir']}): "
              + " ".join(f"{k}={fmt(v)}" for k, v in out["best_params"].items())
              + f"\npgrun-tune: results in {path}; rerun the best: {out['best_command']}", flush=True)
    return out


def tune(opts: Options) -> dict:
    """Run opts.trials trials in this process on the shared study; write and return best.json."""
    import optuna

    from pgrun.runner.cache import enable_compilation_cache

    enable_compilation_cache()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    os.makedirs(opts.dir, exist_ok=True)
    sampler = (optuna.samplers.RandomSampler(seed=opts.seed) if opts.sampler == "random"
               else optuna.samplers.TPESampler(seed=opts.seed))
    study = optuna.create_study(study_name=opts.study, storage=open_storage(opts.storage), sampler=sampler,
                                direction="maximize", load_if_exists=True)
    worker = f"{socket.gethostname()}:{os.getpid()}"
    try:
        # a diverged trial is a result (FAIL in the study), not the end of the search
        study.optimize(objective(opts, worker), n_trials=opts.trials, catch=(TrainingDiverged,))
    finally:
        write_results(study, opts)
    return results(study, opts)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if any(a in ("-h", "--help") for a in argv):
        print(__doc__)
        return
    try:
        import optuna  # noqa: F401
    except ImportError:
        print("pgrun-tune: Optuna is not installed: pip install 'pgrun[tune]'.", file=sys.stderr)
        sys.exit(EXIT_CONFIG)
    try:
        opts = parse_args(argv)
        check_space(opts)
        tune(opts)
    except ConfigError as e:
        print(f"pgrun-tune: config error: {e}", file=sys.stderr)
        sys.exit(EXIT_CONFIG)
    except KeyboardInterrupt:
        print("pgrun-tune: interrupted; finished trials are in the study storage (rerun with the same "
              "tune.storage and tune.study to continue)", file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)


if __name__ == "__main__":
    main()
