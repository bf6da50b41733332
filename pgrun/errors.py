"""The errors pgrun raises for its users: the bottom layer, importing nothing from pgrun.

Each is raised where the problem is found and mapped to an exit status by `pgrun.cli`
(ConfigError 2, TrainingDiverged 3); no caller matches on message text.
"""

from __future__ import annotations

# exit statuses of pgrun's commands
EXIT_CONFIG, EXIT_DIVERGED, EXIT_INTERRUPTED, EXIT_TERMINATED = 2, 3, 130, 143


class ConfigError(ValueError):
    """A config that cannot run; the message is one paragraph for the user."""


class UnknownKeyError(ConfigError, KeyError):
    """A name that is not one of the valid choices (an env, an `env.params` key): a ConfigError,
    and a KeyError for callers that look a name up."""

    __str__ = Exception.__str__  # KeyError would quote the paragraph


class MissingExtra(ConfigError):
    """An optional feature whose package is not installed; the message names pgrun's extra that installs it."""

    @classmethod
    def needs(cls, feature: str, what: str, extra: str, instead: str = "") -> "MissingExtra":
        """`feature` (what the user asked for, e.g. `logger.tensorboard=true`) needs `what` (packages,
        in words); `extra` is the pyproject extra that installs them; `instead`: how to do without."""
        return cls(f"{feature} needs {what}, which is not installed: pip install 'pgrun[{extra}]' (in a "
                   f"checkout: pip install -e '.[{extra}]'){'; or ' + instead if instead else ''}.")


class RunDirExists(ConfigError):
    """The output directory holds another run's metrics and neither resume nor overwrite is set."""


class TrainingDiverged(RuntimeError):
    """Loss, gradient or parameters became NaN/Inf; metrics up to that iteration are kept."""

    @classmethod
    def at(cls, iteration: int, where: str, metrics_path: str) -> "TrainingDiverged":
        """The user's message: which iteration and run, where the earlier metrics are, what to try."""
        return cls(
            f"training diverged: loss, gradient or parameters became NaN/Inf at iteration {iteration} "
            f"({where}); metrics of iterations 1..{iteration - 1} are kept in {metrics_path}. "
            "Try a smaller optimizer.lr or set optimizer.max_grad_norm.")


class ImportanceWeightOverflow(TrainingDiverged):
    """An importance weight w = exp(log w) that an update used exceeded float32's range
    (log w > 88.72), or the iteration went NaN/Inf with weights beyond exp(44.36) (w² overflows):
    the unnormalised IS estimator cannot be computed. Exit status 3, as any divergence; the
    message names the cause and the fix."""

    @classmethod
    def at(cls, iteration: int, where: str, metrics_path: str,
           log_weight: float = float("nan")) -> "ImportanceWeightOverflow":
        return cls(
            f"training stopped: importance-weight overflow at iteration {iteration} ({where}): an update "
            f"used an importance weight w = exp({log_weight:.4g}); float32 holds w only up to exp(88.72) and "
            "w² (gradient norms) up to exp(44.36), so the unnormalised importance-sampling estimator became "
            f"inf/NaN; metrics of iterations 1..{iteration - 1} "
            f"are kept in {metrics_path}. Truncate the weights with estimator.clip_weight (e.g. 10), use "
            "per-step ratios (estimator=is_per_decision), or move less per batch (fewer estimator.epochs, "
            "a smaller optimizer.lr).")
