"""Typed config schemas (Hydra ConfigStore) and the checks run before anything compiles."""

from __future__ import annotations

import difflib
import math
import typing
import warnings
from dataclasses import dataclass, field, is_dataclass
from typing import Any, Dict, List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, OmegaConf

from pgrun.estimators import BASELINES, WEIGHTS
from pgrun.policies import ACTIVATIONS, FEATURE_MAPS


@dataclass
class EnvConfig:
    name: str = MISSING
    max_episode_steps: Optional[int] = None  # None: the env's own time limit
    params: Dict[str, Any] = field(default_factory=dict)  # physics overrides, e.g. gravity
    id: Optional[str] = None  # env=gym only: the gymnasium id (env=gym:<id> sets it)
    vectorization_mode: str = "sync"  # env=gym only: gymnasium vector env, sync | async


@dataclass
class PolicyConfig:
    name: str = MISSING  # softmax_linear | gaussian_linear | mlp
    features: str = "onehot_state"  # softmax_linear: onehot_state | env
    hidden: List[int] = field(default_factory=lambda: [64, 64])
    activation: str = "tanh"
    init_sigma: float = 1.0  # Gaussian policies: initial (or fixed) standard deviation
    learn_sigma: bool = True  # gaussian_linear: learn σ too, or only θ


@dataclass
class EstimatorConfig:
    name: str = MISSING
    weight: str = "reward_to_go"  # total_return | reward_to_go | gae
    baseline: str = "none"  # none | batch_mean | batch_mean_time | value
    gae_lambda: float = 0.95
    normalize_advantages: bool = False
    entropy_coef: float = 0.0
    critic_lr: float = 1e-3
    critic_hidden: List[int] = field(default_factory=lambda: [64, 64])
    critic_updates: int = 1  # critic gradient steps per iteration
    # -- reusing a batch (notes 04, off-policy): see pgrun.offpolicy / pgrun.train_offpolicy
    rollout: str = "episodes"  # episodes (whole episodes, padded) | steps (num_envs x num_steps, auto-reset)
    correction: str = "none"  # none (ratio ≈ 1) | trajectory | per_decision | clip (PPO)
    constraint: str = "none"  # none | kl_penalty (β·KL, adaptive β) | trust_region (TRPO)
    epochs: int = 1  # passes over each batch
    minibatches: int = 1  # optimizer steps per pass (the batch split into equal parts)
    clip_weight: Optional[float] = None  # IS weight truncation min(w, c); None: off
    clip_eps: float = 0.2  # PPO: ratio clipped to [1 - ε, 1 + ε]
    target_kl: Optional[float] = None  # stop an iteration's updates once KL(old‖new) > this; None: off
    value_coef: Optional[float] = None  # V_φ trained jointly with π on each minibatch by the policy's
    #                                     optimizer, loss + value_coef·V-loss; None: V_φ's own optimizer
    kl_beta: float = 1.0  # kl_penalty: initial β
    kl_target: float = 0.01  # kl_penalty: δ that β is adapted toward
    max_kl: float = 0.01  # trust_region: δ, the bound on the mean KL(old‖new) of an accepted step
    cg_iters: int = 10  # trust_region: conjugate-gradient iterations
    cg_damping: float = 0.1  # trust_region: F + damping·I
    backtrack_iters: int = 10  # trust_region: line-search candidates
    backtrack_coef: float = 0.8  # trust_region: step shrink factor per candidate


@dataclass
class OptimizerConfig:
    name: str = MISSING  # adam | sgd
    lr: float = 1e-2
    max_grad_norm: Optional[float] = None  # global-norm clipping; None: off
    schedule: str = "constant"  # constant | linear | cosine (step size decays to 0 over the run)


@dataclass
class LoggerConfig:
    tensorboard: bool = False  # also write TensorBoard event files under <run dir>/tensorboard/


@dataclass
class Config:
    env: EnvConfig = MISSING
    policy: PolicyConfig = MISSING
    estimator: EstimatorConfig = MISSING
    optimizer: OptimizerConfig = MISSING
    seed: int = 0
    num_seeds: int = 8
    iterations: int = 100
    episodes_per_iteration: int = 16
    gamma: float = 0.99
    log_every: int = 10  # iterations per compiled chunk: metrics are written after each
    progress: bool = True
    num_envs: int = 16  # estimator.rollout=steps: envs stepped in parallel (batch columns)
    num_steps: int = 128  # estimator.rollout=steps: steps per env per iteration (batch rows)
    # vmapped hyperparameter grid, e.g. sweep.optimizer.lr=[1e-3,1e-2]: all points x seeds in one program
    sweep: Dict[str, Any] = field(default_factory=dict)
    checkpoint_every: Optional[int] = 100  # iterations between checkpoints (chunk boundaries); 0/null: end only
    resume: Optional[str] = None  # a run directory to continue from its latest checkpoint
    overwrite: bool = False  # allow writing into a directory that already holds another run's metrics
    logger: LoggerConfig = field(default_factory=LoggerConfig)


@dataclass
class EvalConfig:
    """Options of `pgrun-eval <run dir> key=value ...` (parsed with OmegaConf, not Hydra)."""

    episodes: int = 10  # episodes per run, for each of the stochastic and the greedy policy
    seed: int = 0  # PRNG seed of the evaluation episodes (apart from the training seeds)
    video: bool = False  # also render episodes to <run dir>/videos/
    video_format: str = "gif"  # gif (Pillow) | mp4 (imageio-ffmpeg)
    video_policy: str = "greedy"  # greedy (dist.mode()) | stochastic
    video_seeds: int = 1  # render the first k seeds of every sweep point
    fps: int = 30


VIDEO_FORMATS = ("gif", "mp4")
VIDEO_POLICIES = ("greedy", "stochastic")
OPTIMIZERS = ("adam", "sgd")
SCHEDULES = ("constant", "linear", "cosine")
POLICIES = ("softmax_linear", "gaussian_linear", "mlp")


# configs/hydra/launcher/{joblib,submitit_*}.yaml deliberately shadow the launcher plugins' configs and
# are validated against their schemas; Hydra 1.3 still does this but warns that it is deprecated.
# (Here, not in cli.py: launcher workers unpickle the task function and import this module, not cli.)
warnings.filterwarnings("ignore", message="(?s).*is validated against ConfigStore schema with the same name")


def register_configs() -> None:
    cs = ConfigStore.instance()
    node = OmegaConf.structured(Config)
    OmegaConf.set_struct(node.sweep, False)  # sweep.<any key>=[...] without Hydra's `+`
    cs.store(name="base_config", node=node)
    cs.store(group="env", name="base_env", node=EnvConfig)
    cs.store(group="policy", name="base_policy", node=PolicyConfig)
    cs.store(group="estimator", name="base_estimator", node=EstimatorConfig)
    cs.store(group="optimizer", name="base_optimizer", node=OptimizerConfig)


def unknown_key_message(dotted: str) -> str | None:
    """A one-paragraph error when `dotted` (e.g. `itrations`, `optimizer.lrr`) is not a key
    of the Config schema, naming the closest valid keys; None when it is one. Keys under a
    free-form dict (`sweep.*`, `env.params.*`) are not checked here."""
    node, path = Config, []
    for part in dotted.split("."):
        if not (isinstance(node, type) and is_dataclass(node)):
            if typing.get_origin(node) in (dict, typing.Dict) or node is typing.Any:
                return None  # a dict: any key
            return (f"{dotted} is not a config key: {'.'.join(path)} is a single value "
                    f"({getattr(node, '__name__', node)}), not a group of keys.")
        hints = typing.get_type_hints(node)
        if part not in hints:
            where = ".".join(path)
            choices = sorted(hints)
            close = difflib.get_close_matches(part, choices, n=1)
            hint = f" Did you mean {'.'.join([*path, close[0]])}?" if close else ""
            return (f"{dotted} is not a config key: {where + ' has' if where else 'the config has'} no "
                    f"'{part}'.{hint} Valid keys{' of ' + where if where else ''}: {', '.join(choices)}.")
        node, path = hints[part], [*path, part]
        if typing.get_origin(node) is typing.Union:  # Optional[X]
            node = next(a for a in typing.get_args(node) if a is not type(None))
    return None


class ConfigError(ValueError):
    """A config that cannot run; the message is one paragraph for the user."""


def validate_eval(ec) -> None:
    """ConfigError for pgrun-eval options that cannot run."""
    _choice("video_format", ec.video_format, VIDEO_FORMATS)
    _choice("video_policy", ec.video_policy, VIDEO_POLICIES)
    for key, lo in (("episodes", 1), ("video_seeds", 1), ("fps", 1)):
        if getattr(ec, key) < lo:
            raise ConfigError(f"{key}={getattr(ec, key)} must be an integer >= {lo}.")
    if ec.video and ec.video_format == "mp4":
        import importlib.util

        if importlib.util.find_spec("imageio_ffmpeg") is None:
            raise ConfigError("video_format=mp4 needs imageio and imageio-ffmpeg (pip install 'pgrun[video]'); "
                              "valid choices without them: gif.")


def _validate_run_options(cfg) -> None:
    """sweep, checkpoint_every, logger: checked with the rest, before anything compiles."""
    import importlib.util

    from pgrun.sweep import validate_sweep

    validate_sweep(cfg)
    every = cfg.get("checkpoint_every")
    if every is not None and (isinstance(every, bool) or not isinstance(every, int) or every < 0):
        raise ConfigError(f"checkpoint_every={every} must be an integer >= 0 (0 or null: checkpoint at the end only).")
    if cfg.get("logger") and cfg.logger.get("tensorboard") and importlib.util.find_spec("tensorboard") is None:
        raise ConfigError(
            "logger.tensorboard=true needs the tensorboard package, which is not installed; "
            "pip install 'pgrun[tensorboard]', or set logger.tensorboard=false.")


def _choice(key: str, value, valid) -> None:
    if value not in valid:
        raise ConfigError(f"{key}={value} is not valid; valid choices: {', '.join(map(str, valid))}.")


def validate(cfg, env=None) -> None:
    """Raise ConfigError (naming the key and the valid values) for a config that cannot run.

    `env`, when given, is the instantiated env, for checks across groups.
    """
    from gymnasium import spaces

    _choice("policy.name", cfg.policy.name, POLICIES)
    _choice("policy.activation", cfg.policy.activation, tuple(ACTIVATIONS))
    _choice("policy.features", cfg.policy.features, FEATURE_MAPS)
    _choice("estimator.weight", cfg.estimator.weight, WEIGHTS)
    _choice("estimator.baseline", cfg.estimator.baseline, BASELINES)
    if cfg.estimator.baseline == "optimal" and cfg.estimator.weight != "total_return":
        raise ConfigError(
            f"estimator.baseline=optimal (b* per parameter on the episode score, notes 03 App. C) needs "
            f"estimator.weight=total_return, not {cfg.estimator.weight}; valid choices: total_return.")
    _choice("optimizer.name", cfg.optimizer.name, OPTIMIZERS)
    _choice("optimizer.schedule", cfg.optimizer.schedule, SCHEDULES)
    if cfg.estimator.weight == "gae" and cfg.estimator.baseline not in ("none", "value"):
        raise ConfigError(
            f"estimator.baseline={cfg.estimator.baseline} cannot combine with estimator.weight=gae "
            "(GAE already subtracts the learned V); valid choices: value, none.")
    positive = {"optimizer.lr": cfg.optimizer.lr, "estimator.critic_lr": cfg.estimator.critic_lr,
                "policy.init_sigma": cfg.policy.init_sigma}
    for key, v in positive.items():
        if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
            raise ConfigError(f"{key}={v} must be a finite number > 0.")
    if cfg.optimizer.max_grad_norm is not None and not cfg.optimizer.max_grad_norm > 0:
        raise ConfigError(f"optimizer.max_grad_norm={cfg.optimizer.max_grad_norm} must be > 0 or null.")
    for key in ("gamma", "estimator.gae_lambda"):
        v = cfg.gamma if key == "gamma" else cfg.estimator.gae_lambda
        if not (0.0 <= v <= 1.0):
            raise ConfigError(f"{key}={v} must lie in [0, 1].")
    ints = {"num_seeds": (cfg.num_seeds, 1), "iterations": (cfg.iterations, 1),
            "episodes_per_iteration": (cfg.episodes_per_iteration, 2), "log_every": (cfg.log_every, 1),
            "estimator.critic_updates": (cfg.estimator.critic_updates, 1)}
    for key, (v, lo) in ints.items():
        if v < lo:
            raise ConfigError(f"{key}={v} must be an integer >= {lo}.")
    if cfg.env.max_episode_steps is not None and cfg.env.max_episode_steps < 1:
        raise ConfigError(f"env.max_episode_steps={cfg.env.max_episode_steps} must be >= 1 or null.")
    _validate_offpolicy(cfg)
    _validate_run_options(cfg)
    if env is None:
        return
    discrete = isinstance(env.action_space, spaces.Discrete)
    kind = "discrete (Discrete)" if discrete else "continuous (Box)"
    if cfg.policy.name == "gaussian_linear" and discrete:
        raise ConfigError(
            f"policy=gaussian_linear needs a continuous action space, but env={cfg.env.name} has a "
            f"{kind} one; valid choices for this env: softmax_linear, mlp.")
    if cfg.policy.name == "softmax_linear" and not discrete:
        raise ConfigError(
            f"policy=softmax_linear needs a discrete action space, but env={cfg.env.name} has a "
            f"{kind} one; valid choices for this env: gaussian_linear, mlp.")
    if cfg.policy.name == "softmax_linear" and cfg.policy.features == "env" and not hasattr(env, "features"):
        raise ConfigError(
            f"policy.features=env, but env={cfg.env.name} defines no feature map x(s, a); "
            "valid choices: onehot_state.")


def _validate_offpolicy(cfg) -> None:
    """Checks of the batch-reuse keys (rollout mode, corrections, constraints, minibatches)."""
    from pgrun.estimators import needs_critic
    from pgrun.offpolicy import CONSTRAINTS, CORRECTIONS, ROLLOUTS, minibatch_unit

    est = cfg.estimator
    _choice("estimator.rollout", est.rollout, ROLLOUTS)
    _choice("estimator.correction", est.correction, CORRECTIONS)
    _choice("estimator.constraint", est.constraint, CONSTRAINTS)
    ints = {"estimator.epochs": est.epochs, "estimator.minibatches": est.minibatches,
            "num_envs": cfg.num_envs, "num_steps": cfg.num_steps, "estimator.cg_iters": est.cg_iters,
            "estimator.backtrack_iters": est.backtrack_iters}
    for key, v in ints.items():
        if v < 1:
            raise ConfigError(f"{key}={v} must be an integer >= 1.")
    positive = {"estimator.clip_eps": est.clip_eps, "estimator.kl_target": est.kl_target,
                "estimator.max_kl": est.max_kl}
    optional_positive = {"estimator.clip_weight": est.clip_weight, "estimator.target_kl": est.target_kl}
    nonneg = {"estimator.kl_beta": est.kl_beta, "estimator.cg_damping": est.cg_damping,
              "estimator.value_coef": est.value_coef}
    for key, v in positive.items():
        if not (math.isfinite(v) and v > 0):
            raise ConfigError(f"{key}={v} must be a finite number > 0.")
    for key, v in optional_positive.items():
        if v is not None and not (math.isfinite(v) and v > 0):
            raise ConfigError(f"{key}={v} must be a finite number > 0, or null (off).")
    for key, v in nonneg.items():
        if v is not None and not (math.isfinite(v) and v >= 0):
            raise ConfigError(f"{key}={v} must be a finite number >= 0" + (", or null." if key.endswith("coef") else "."))
    if not 0 < est.backtrack_coef < 1:
        raise ConfigError(f"estimator.backtrack_coef={est.backtrack_coef} must lie in (0, 1).")
    if est.clip_weight is not None and est.correction not in ("trajectory", "per_decision"):
        raise ConfigError(
            f"estimator.clip_weight={est.clip_weight} truncates importance weights, but "
            f"estimator.correction={est.correction} has none; valid choices with clip_weight: "
            "trajectory, per_decision (or set estimator.clip_weight=null).")
    if est.value_coef is not None and not needs_critic(est.weight, est.baseline):
        raise ConfigError(
            f"estimator.value_coef={est.value_coef} trains the critic V_φ jointly with the policy, but "
            f"estimator.weight={est.weight} with estimator.baseline={est.baseline} uses no critic; set "
            "estimator.value_coef=null, or estimator.baseline=value or estimator.weight=gae.")
    if est.constraint == "trust_region":
        bad = {"estimator.correction": (est.correction, "per_decision"), "estimator.epochs": (est.epochs, 1),
               "estimator.minibatches": (est.minibatches, 1), "estimator.value_coef": (est.value_coef, None)}
        for key, (v, want) in bad.items():
            if v != want:
                raise ConfigError(
                    f"estimator.constraint=trust_region (TRPO) takes one natural-gradient step per batch on "
                    f"the per-decision ratio surrogate, with the critic on its own optimizer, so {key}={v} "
                    f"is not valid; valid choice: {key}={'null' if want is None else want}.")
    if est.rollout == "steps":
        if est.weight == "total_return" or est.baseline in ("batch_mean", "batch_mean_time"):
            raise ConfigError(
                f"estimator.rollout=steps cuts episodes at the batch boundary, so the whole-episode "
                f"quantities of estimator.weight={est.weight} / estimator.baseline={est.baseline} are not "
                "defined; valid choices in steps mode: weight reward_to_go or gae, baseline none or value "
                "(or set estimator.rollout=episodes).")
    unit, count = minibatch_unit(est.rollout, est.correction, cfg.episodes_per_iteration, cfg.num_envs,
                                 cfg.num_steps)
    if count % est.minibatches != 0:
        raise ConfigError(
            f"estimator.minibatches={est.minibatches} must divide the batch into equal parts, but the "
            f"batch has {count} {unit}; valid choices: divisors of {count} "
            f"({', '.join(str(d) for d in range(1, count + 1) if count % d == 0)}).")
