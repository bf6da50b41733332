"""The one validation of a typed Config: ConfigError, naming the key and the valid values,
for anything that cannot run, before anything is built or compiled.

The valid choices are the ones the math in `pgrun.core` implements (its WEIGHTS, BASELINES,
CORRECTIONS, ...), so the config layer sits above core; they are read from `pgrun.core.names`,
which imports no JAX, so a config error answers without loading it. Checks that need the env (action
space, feature map, time limit) take the env's facts, not the env: `check_env`, called once
by `pgrun.train.build`.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import math
from typing import Any, Callable

from pgrun.config.group import SEQUENCE_POLICIES, validate_group, validate_tokens
from pgrun.config.schema import Config, EvalConfig
from pgrun.core.names import (
    ACTIVATION_NAMES,
    BASELINES,
    CONSTRAINTS,
    CORRECTIONS,
    FEATURE_MAPS,
    GROUP_BASELINES,
    GYM_PREFIX,
    GYMNAX_PREFIX,
    LOG_STD_MAX,
    LOG_STD_MIN,
    ROLLOUTS,
    WEIGHTS,
    minibatch_unit,
    needs_critic,
)
from pgrun.errors import ConfigError, MissingExtra

VIDEO_FORMATS = ("gif", "mp4")
WANDB_MODES = ("offline", "online")
VIDEO_POLICIES = ("greedy", "stochastic")
OPTIMIZERS = ("adam", "sgd")
SCHEDULES = ("constant", "linear", "cosine")
POLICIES = ("softmax_linear", "gaussian_linear", "mlp", "cnn", *SEQUENCE_POLICIES)
VECTORIZATION_MODES = ("sync", "async")  # env=gym: gymnasium vector env


def _positive(v: float) -> bool:
    return math.isfinite(v) and v > 0


def _unit(v: float) -> bool:
    return 0.0 <= v <= 1.0


def _nonneg(v: float) -> bool:
    return math.isfinite(v) and v >= 0


# The keys that `sweep.<key>=[...]` can vary inside one compiled program (they are values in the
# training state, not shapes or code), in the order of metrics.csv's sweep columns: key ->
# (is a value valid?, the rule in words). pgrun.train.sweep writes each into the TrainState.
SWEEP_RULES: dict[str, tuple[Callable[[float], bool], str]] = {
    "optimizer.lr": (_positive, "> 0"),
    "gamma": (_unit, "in [0, 1]"),
    "estimator.gae_lambda": (_unit, "in [0, 1]"),
    "estimator.entropy_coef": (math.isfinite, "finite"),
    "estimator.critic_lr": (_positive, "> 0"),
    "estimator.kl_beta": (_nonneg, ">= 0"),
    "estimator.kl_coef": (_nonneg, ">= 0"),  # group estimators (pgrun.train.group): β of the KL to π_ref
    "estimator.clip_eps_high": (_positive, "> 0"),  # group estimators with correction=clip
}


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """{'optimizer': {'lr': [..]}, 'gamma': [..]} -> {'optimizer.lr': [..], 'gamma': [..]}."""
    if not isinstance(tree, dict):
        return {prefix: tree}
    out = {}
    for k, v in tree.items():
        out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    return out


def swept_values(config: Config) -> dict[str, list]:
    """The sweep as {dotted key: list of values} (a scalar counts as a one-value list)."""
    return {k: (list(v) if isinstance(v, (list, tuple)) else [v]) for k, v in flatten(config.sweep or {}).items()}


def installed(*modules: str) -> bool:
    """Whether every module can be found (an optional feature's packages); a module made
    unimportable (sys.modules[name] = None) or a missing parent package counts as missing."""
    for m in modules:
        try:
            if importlib.util.find_spec(m) is None:
                return False
        except (ImportError, ValueError):
            return False
    return True


def _choice(key: str, value: Any, valid: Any) -> None:
    if value not in valid:
        raise ConfigError(f"{key}={value} is not valid; valid choices: {', '.join(map(str, valid))}.")


def validate(cfg: Config) -> None:
    """Raise ConfigError (naming the key and the valid values) for a config that cannot run."""
    _choice("policy.name", cfg.policy.name, POLICIES)
    _choice("policy.activation", cfg.policy.activation, ACTIVATION_NAMES)
    _choice("policy.features", cfg.policy.features, FEATURE_MAPS)
    _choice("estimator.weight", cfg.estimator.weight, WEIGHTS)
    _choice("estimator.baseline", cfg.estimator.baseline, BASELINES + GROUP_BASELINES)
    if cfg.estimator.baseline == "optimal" and cfg.estimator.weight not in ("total_return", "reward_to_go"):
        raise ConfigError(
            f"estimator.baseline=optimal (b* per parameter on the episode score, notes 03 App. C) needs "
            f"a Monte-Carlo weight, not estimator.weight={cfg.estimator.weight}; valid choices: total_return, "
            "reward_to_go.")
    if cfg.estimator.gamma_t and cfg.estimator.weight == "total_return":
        raise ConfigError(
            "estimator.gamma_t=true multiplies step t's term by γ^t, which the reward_to_go and gae weights "
            "need to be unbiased for the discounted objective; estimator.weight=total_return is unbiased "
            "without it (G(τ) = Σ_k γ^k r_k is already discounted from the episode's start), so gamma_t would "
            "have no effect. Set estimator.gamma_t=false, or a weight it applies to; valid choices with "
            "gamma_t: estimator.weight=reward_to_go, gae.")
    if not (math.isfinite(cfg.estimator.baseline_decay) and 0.0 <= cfg.estimator.baseline_decay <= 1.0):
        raise ConfigError(
            f"estimator.baseline_decay={cfg.estimator.baseline_decay} must lie in [0, 1] (the weight of the "
            "previous batches' sums that estimate the optimal baseline b*; 0: leave-one-out in the batch only).")
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
    for key, v in (("gamma", cfg.gamma), ("estimator.gae_lambda", cfg.estimator.gae_lambda)):
        if not (0.0 <= v <= 1.0):
            raise ConfigError(f"{key}={v} must lie in [0, 1].")
    ints = {"num_seeds": (cfg.num_seeds, 1), "iterations": (cfg.iterations, 1),
            "episodes_per_iteration": (cfg.episodes_per_iteration, 2), "log_every": (cfg.log_every, 1),
            "estimator.critic_updates": (cfg.estimator.critic_updates, 1)}
    for key, (n, lo) in ints.items():
        if n < lo:
            raise ConfigError(f"{key}={n} must be an integer >= {lo}.")
    if cfg.env.max_episode_steps is not None and cfg.env.max_episode_steps < 1:
        raise ConfigError(f"env.max_episode_steps={cfg.env.max_episode_steps} must be >= 1 or null.")
    _validate_offpolicy(cfg)
    validate_group(cfg)
    validate_tokens(cfg)
    _validate_run_options(cfg)
    if cfg.env.name in (GYM_PREFIX, GYM_PREFIX + "None"):  # env=gym without env.id
        raise ConfigError("env=gym needs a gymnasium id: env=gym:<id> (or env=gym env.id=<id>), "
                          "e.g. env=gym:CartPole-v1.")
    if cfg.env.name in (GYMNAX_PREFIX, GYMNAX_PREFIX + "None"):  # env=gymnax without env.id
        raise ConfigError("env=gymnax needs a gymnax id: env=gymnax:<id> (or env=gymnax env.id=<id>), "
                          "e.g. env=gymnax:Breakout-MinAtar.")


def check_env(cfg: Config, *, env_name: str, host: bool, discrete: bool, has_features: bool,
              time_limit: int | None, image_shape: tuple[int, ...] | None = None) -> None:
    """The checks across groups that need the env's facts: stepped on the host (env=gym:<id>)
    or not, its action space (Discrete or Box), whether it defines a feature map x(s, a), its
    own time limit (None: none) and its image observation shape [H, W, C] (None: not an image)."""
    kind = "discrete (Discrete)" if discrete else "continuous (Box)"
    if cfg.policy.name == "gaussian_linear" and discrete:
        raise ConfigError(
            f"policy=gaussian_linear needs a continuous action space, but env={cfg.env.name} has a "
            f"{kind} one; valid choices for this env: softmax_linear, mlp.")
    if cfg.policy.name == "softmax_linear" and not discrete:
        raise ConfigError(
            f"policy=softmax_linear needs a discrete action space, but env={cfg.env.name} has a "
            f"{kind} one; valid choices for this env: gaussian_linear, mlp.")
    if cfg.policy.name == "cnn" and image_shape is None:
        raise ConfigError(
            f"policy=cnn needs image observations [H, W, C] (e.g. env=gymnax:Breakout-MinAtar), but "
            f"env={cfg.env.name} has flat ones; valid choices for this env: mlp, "
            f"{'softmax_linear' if discrete else 'gaussian_linear'}.")
    learned_sigma = (cfg.policy.name in ("mlp", "cnn")
                     or (cfg.policy.name == "gaussian_linear" and cfg.policy.learn_sigma))
    if not discrete and learned_sigma and not (LOG_STD_MIN <= math.log(cfg.policy.init_sigma) <= LOG_STD_MAX):
        raise ConfigError(
            f"policy.init_sigma={cfg.policy.init_sigma} lies outside the bounds of a learned σ, "
            f"[exp({LOG_STD_MIN:g}), exp({LOG_STD_MAX:g})] = "
            f"[{math.exp(LOG_STD_MIN):.3g}, {math.exp(LOG_STD_MAX):.4g}] "
            "(log σ is clipped to [-20, 2]); choose init_sigma inside them, or policy.learn_sigma=false "
            "(gaussian_linear) for a fixed σ.")
    if cfg.policy.name == "softmax_linear" and cfg.policy.features == "env" and not has_features:
        raise ConfigError(
            f"policy.features=env, but env={cfg.env.name} defines no feature map x(s, a); "
            "valid choices: onehot_state.")
    if host:
        _choice("env.vectorization_mode", cfg.env.vectorization_mode, VECTORIZATION_MODES)
        if cfg.sweep:
            raise ConfigError(
                f"sweep.{next(iter(flatten(cfg.sweep)))}: a vmapped sweep runs its points in one compiled program, "
                f"but env={env_name} is stepped by gymnasium on the host, one run of num_seeds seeds; sweep "
                "it as a Hydra multirun instead, e.g. pgrun -m optimizer.lr=0.001,0.01.")
    if cfg.env.max_episode_steps is None and time_limit is None:
        raise ConfigError(f"env={env_name} has no time limit in its gymnasium spec; set "
                          "env.max_episode_steps=<T> (episodes are padded to T steps).")


def validate_eval(ec: EvalConfig) -> None:
    """ConfigError for pgrun-eval options that cannot run."""
    _choice("video_format", ec.video_format, VIDEO_FORMATS)
    _choice("video_policy", ec.video_policy, VIDEO_POLICIES)
    for key, lo in (("episodes", 1), ("video_seeds", 1), ("fps", 1)):
        if getattr(ec, key) < lo:
            raise ConfigError(f"{key}={getattr(ec, key)} must be an integer >= {lo}.")
    if ec.video and ec.video_format == "mp4" and not installed("imageio", "imageio_ffmpeg"):
        raise MissingExtra.needs("video=true video_format=mp4", "imageio and imageio-ffmpeg", "video",
                                 "use video_format=gif (Pillow, always installed)")


def _validate_run_options(cfg: Config) -> None:
    """sweep, checkpoint_every, logger: checked with the rest, before anything compiles."""
    validate_sweep(cfg)
    every = cfg.checkpoint_every
    if every is not None and (isinstance(every, bool) or not isinstance(every, int) or every < 0):
        raise ConfigError(f"checkpoint_every={every} must be an integer >= 0 (0 or null: checkpoint at the end only).")
    if cfg.logger.tensorboard and not installed("tensorboard"):
        raise MissingExtra.needs("logger.tensorboard=true", "the tensorboard package", "tensorboard",
                                 "set logger.tensorboard=false (metrics.csv has every metric)")
    _validate_loggers(cfg)


def _validate_loggers(cfg: Config) -> None:
    """logger.wandb / logger.trackio: their options, and the package installed (MissingExtra)."""
    lc = cfg.logger
    if lc.wandb_mode not in WANDB_MODES:
        raise ConfigError(f"logger.wandb_mode={lc.wandb_mode!r} is not one of {', '.join(WANDB_MODES)} (offline: "
                          "nothing leaves the machine, `wandb sync <run dir>/wandb` uploads it later).")
    for key in ("wandb_project", "trackio_project"):
        name = getattr(lc, key)
        if not isinstance(name, str) or not name.strip() or "/" in name:
            raise ConfigError(f"logger.{key}={name!r} must be a non-empty project name without '/'.")
    if lc.wandb and not installed("wandb"):
        raise MissingExtra.needs("logger.wandb=true", "the wandb package", "wandb",
                                 "set logger.wandb=false (metrics.csv has every metric)")
    if lc.trackio and not installed("trackio"):
        raise MissingExtra.needs("logger.trackio=true", "the trackio package", "trackio",
                                 "set logger.trackio=false (metrics.csv has every metric)")


def _has_key(config: Config, dotted: str) -> bool:
    """Whether `dotted` names a value set in the config (a schema key, a key of a dict or an index
    of a list in it), as `OmegaConf.select` would find it."""
    node: Any = config
    for part in dotted.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        elif dataclasses.is_dataclass(node) and part in {f.name for f in dataclasses.fields(node)}:
            node = getattr(node, part)
        else:
            return False
    return True


def validate_sweep(cfg: Config) -> None:
    """ConfigError for a sweep key that is structural or unknown, or a value out of range."""
    valid = ", ".join(SWEEP_RULES)
    swept = swept_values(cfg)
    for key, vals in swept.items():
        if key not in SWEEP_RULES:
            if not _has_key(cfg, key):
                raise ConfigError(f"sweep.{key}: {key} is not a config key; keys that sweep.<key>=[...] can vmap: "
                                  f"{valid}.")
            raise ConfigError(
                f"sweep.{key}: {key} is structural (it changes the compiled program's shapes or code), so it "
                "cannot vary inside one vmapped program. Sweep it with a Hydra multirun instead, one job per "
                f"value, e.g. `pgrun -m {key}=A,B` (values comma-separated; lists in brackets). Keys that "
                f"sweep.<key>=[...] can vmap: {valid}.")
        if not vals:
            raise ConfigError(f"sweep.{key}=[] has no values; give a list such as sweep.{key}=[0.1,0.2].")
        ok, rule = SWEEP_RULES[key]
        for v in vals:
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not ok(float(v)):
                raise ConfigError(f"sweep.{key} value {v!r} is not valid: every value must be a number {rule}.")
        if len(set(vals)) != len(vals):
            raise ConfigError(f"sweep.{key}={vals} repeats a value; give each value once.")
    est = cfg.estimator
    if "estimator.critic_lr" in swept and not needs_critic(est.weight, est.baseline):
        raise ConfigError(
            f"sweep.estimator.critic_lr: estimator={est.name} has no critic, so critic_lr has no effect; "
            "sweep it with an estimator that learns V (value_baseline, actor_critic).")
    if "estimator.gae_lambda" in swept and est.weight != "gae":
        raise ConfigError(
            f"sweep.estimator.gae_lambda: estimator={est.name} (weight={est.weight}) does not use λ; "
            "sweep it with estimator.weight=gae (e.g. estimator=actor_critic).")
    if "estimator.kl_beta" in swept and est.constraint != "kl_penalty":
        raise ConfigError(
            f"sweep.estimator.kl_beta: estimator={est.name} (constraint={est.constraint}) has no KL penalty, so "
            "kl_beta has no effect; sweep it with estimator.constraint=kl_penalty (e.g. estimator=kl_penalty).")


def _validate_offpolicy(cfg: Config) -> None:
    """Checks of the batch-reuse keys (rollout mode, corrections, constraints, minibatches)."""
    est = cfg.estimator
    _choice("estimator.rollout", est.rollout, ROLLOUTS)
    _choice("estimator.correction", est.correction, CORRECTIONS)
    _choice("estimator.constraint", est.constraint, CONSTRAINTS)
    ints = {"estimator.epochs": est.epochs, "estimator.minibatches": est.minibatches,
            "num_envs": cfg.num_envs, "num_steps": cfg.num_steps, "estimator.cg_iters": est.cg_iters,
            "estimator.backtrack_iters": est.backtrack_iters}
    v: object  # each loop below narrows it to its dict's value type
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
            tail = ", or null." if key.endswith("coef") else "."
            raise ConfigError(f"{key}={v} must be a finite number >= 0" + tail)
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
    reuses = (est.rollout != "episodes" or est.correction != "none" or est.constraint != "none" or est.epochs > 1
              or est.minibatches > 1 or est.value_coef is not None)  # pgrun.train.offpolicy.uses_offpolicy
    if est.baseline == "optimal" and reuses:
        raise ConfigError(
            "estimator.baseline=optimal is an on-policy estimator (one gradient step per batch, b* from the "
            "previous batches), so it cannot reuse a batch; valid choices with it: estimator.rollout=episodes, "
            "estimator.correction=none, estimator.constraint=none, estimator.epochs=1, estimator.minibatches=1, "
            "estimator.value_coef=null.")
    if est.rollout == "steps" and est.weight != "gae":
        # Monte-Carlo weights: G(τ) and the batch means are not defined on cut episodes, and G_t would
        # be cut at the batch's end with nothing to bootstrap it (a biased, shortened return)
        raise ConfigError(
            f"estimator.rollout=steps cuts episodes at the batch boundary, so the Monte-Carlo weight "
            f"estimator.weight={est.weight} (with estimator.baseline={est.baseline}) is not valid there: "
            "G(τ) and the batch-mean baselines need whole episodes, and a reward-to-go G_t would be cut "
            "at the batch's end without bootstrapping (biased). Valid choices in steps mode: "
            "estimator.weight=gae with estimator.baseline=value or none (estimator.gae_lambda=1.0 is the "
            "Monte-Carlo return bootstrapped with V at the cut); or set estimator.rollout=episodes.")
    unit, count = minibatch_unit(est.rollout, est.correction, cfg.episodes_per_iteration, cfg.num_envs,
                                 cfg.num_steps)
    if count % est.minibatches != 0:
        raise ConfigError(
            f"estimator.minibatches={est.minibatches} must divide the batch into equal parts, but the "
            f"batch has {count} {unit}; valid choices: divisors of {count} "
            f"({', '.join(str(d) for d in range(1, count + 1) if count % d == 0)}).")
