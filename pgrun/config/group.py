"""Checks of the group-estimator keys (estimator.group_size, adv_scale, loss_agg, ratio_level,
clip_eps_high, kl_coef, kl_estimator, dynamic_sampling), the Tokens env keys and the sequence
policies; and `uses_group`, which tells `pgrun.train.program` to run `pgrun.train.group`.
"""

from __future__ import annotations

import math

from pgrun.config.schema import Config, EstimatorConfig
from pgrun.core.names import (
    ADV_SCALES,
    AGGREGATIONS,
    GROUP_BASELINES,
    KL_ESTIMATORS,
    MAX_VOCAB,
    RATIO_LEVELS,
    answer_length,
    prefix_table_size,
)
from pgrun.core.names import TOKEN_TASKS as TASKS
from pgrun.errors import ConfigError

SEQUENCE_POLICIES = ("transformer", "gru", "tabular_prefix")
TOKEN_KEYS = ("task", "prompt_len", "vocab", "horizon")
MAX_PREFIX_TABLE = 2_000_000  # θ entries of policy=tabular_prefix
GROUP_PATH_BASELINES = ("none", "batch_mean", *GROUP_BASELINES)


def uses_group(est: EstimatorConfig) -> bool:
    """Whether any group-estimator setting departs from the lecture's defaults."""
    return (est.group_size > 1 or est.baseline in GROUP_BASELINES or est.adv_scale != "none"
            or est.loss_agg != "seq_sum" or est.ratio_level != "token" or est.clip_eps_high is not None
            or est.kl_coef != 0 or est.dynamic_sampling)


def _choice(key: str, value: object, valid: tuple) -> None:
    if value not in valid:
        raise ConfigError(f"{key}={value} is not valid; valid choices: {', '.join(map(str, valid))}.")


def validate_tokens(cfg: Config) -> None:
    """env.task / prompt_len / vocab / horizon belong to env=Tokens; sequence policies need it."""
    env = cfg.env
    if cfg.policy.kv_cache and cfg.policy.name != "transformer":
        raise ConfigError(f"policy.kv_cache=true is the KV cache of policy=transformer's attention; policy="
                          f"{cfg.policy.name} has none. Remove policy.kv_cache (or set it to null or false), "
                          "or choose policy=transformer.")
    if env.name != "Tokens":
        set_keys = [f"env.{k}" for k in TOKEN_KEYS if getattr(env, k) is not None]
        if set_keys:
            raise ConfigError(f"{', '.join(set_keys)} only apply to env=Tokens (token sequences), not "
                              f"env={env.name}; remove them or choose env=Tokens.")
        if cfg.policy.name in SEQUENCE_POLICIES:
            raise ConfigError(f"policy={cfg.policy.name} reads token sequences, so it needs env=Tokens, not "
                              f"env={env.name}; valid choices for this env: softmax_linear, gaussian_linear, mlp.")
        return
    task, P, V, H = env.task or "reverse", env.prompt_len or 4, env.vocab or 8, env.horizon or 5
    _choice("env.task", task, TASKS)
    if not 2 <= V <= MAX_VOCAB:
        raise ConfigError(f"env.vocab={V} must be an integer in 2..{MAX_VOCAB} (answer tokens; EOS is added).")
    if P < 1 or (task == "add" and (P < 2 or P % 2)):
        raise ConfigError(f"env.prompt_len={P} is not valid for env.task={task}: it must be >= 1"
                          + (", and even (two numbers of prompt_len/2 digits)." if task == "add" else "."))
    if not 1 <= H <= 16:
        raise ConfigError(f"env.horizon={H} must be an integer in 1..16.")
    need = answer_length(task, P)
    if H < need:
        raise ConfigError(f"env.horizon={H} is shorter than the answer of env.task={task} with "
                          f"env.prompt_len={P} ({need} tokens), so no completion could be correct; "
                          f"set env.horizon >= {need}.")
    for key in ("width", "layers", "heads"):
        if getattr(cfg.policy, key) < 1:
            raise ConfigError(f"policy.{key}={getattr(cfg.policy, key)} must be an integer >= 1.")
    if cfg.policy.name == "transformer" and cfg.policy.width % cfg.policy.heads:
        raise ConfigError(f"policy.width={cfg.policy.width} must be a multiple of policy.heads={cfg.policy.heads}.")
    if cfg.policy.name == "tabular_prefix" and prefix_table_size(P, V, H) * (V + 1) > MAX_PREFIX_TABLE:
        raise ConfigError(
            f"policy=tabular_prefix keeps logits for every (prompt, prefix): {prefix_table_size(P, V, H)} states × "
            f"{V + 1} tokens at env.prompt_len={P} env.vocab={V} env.horizon={H}, over the limit of "
            f"{MAX_PREFIX_TABLE}; make the instance smaller or use policy=transformer or policy=gru.")


def validate_group(cfg: Config) -> None:
    """ConfigError, one paragraph naming the key and the valid values, for group settings that cannot run."""
    est = cfg.estimator
    _choice("estimator.adv_scale", est.adv_scale, ADV_SCALES)
    _choice("estimator.loss_agg", est.loss_agg, AGGREGATIONS)
    _choice("estimator.ratio_level", est.ratio_level, RATIO_LEVELS)
    _choice("estimator.kl_estimator", est.kl_estimator, KL_ESTIMATORS)
    if est.group_size < 1:
        raise ConfigError(f"estimator.group_size={est.group_size} must be an integer >= 1.")
    swept = set((cfg.sweep or {}).get("estimator") or {}) & {"kl_coef", "clip_eps_high"}
    if swept and not uses_group(est):
        raise ConfigError(f"sweep.estimator.{sorted(swept)[0]}: estimator={est.name} is not a group estimator, so "
                          "it has no effect; sweep it with estimator=rloo|grpo|dr_grpo|dapo|gspo|reinforce_pp.")
    if "clip_eps_high" in swept and est.correction != "clip":
        raise ConfigError(f"sweep.estimator.clip_eps_high: estimator={est.name} (correction={est.correction}) clips "
                          "no ratio, so it has no effect; set estimator.correction=clip (e.g. estimator=dapo).")
    if not uses_group(est):
        return
    G, N = est.group_size, cfg.episodes_per_iteration
    needs_group = [k for k, on in (("estimator.baseline=" + est.baseline, est.baseline in GROUP_BASELINES),
                                   ("estimator.adv_scale=group_std", est.adv_scale == "group_std"),
                                   ("estimator.dynamic_sampling=true", est.dynamic_sampling)) if on]
    if needs_group and G < 2:
        raise ConfigError(f"{needs_group[0]} compares the completions of one prompt, so it needs "
                          f"estimator.group_size >= 2 (G completions per prompt), not {G}.")
    if N % G:
        raise ConfigError(f"episodes_per_iteration={N} must be a multiple of estimator.group_size={G} "
                          f"(prompts × G completions); e.g. episodes_per_iteration={max(1, N // G) * G}.")
    if (N // G) % est.minibatches:
        raise ConfigError(f"estimator.minibatches={est.minibatches} must divide the {N // G} groups of a batch "
                          "(minibatches hold whole groups); valid choices: "
                          f"{', '.join(str(d) for d in range(1, N // G + 1) if (N // G) % d == 0)}.")
    _choice("estimator.baseline (with group settings)", est.baseline, GROUP_PATH_BASELINES)
    _choice("estimator.weight (with group settings)", est.weight, ("total_return", "reward_to_go"))
    _choice("estimator.correction (with group settings)", est.correction, ("none", "clip"))
    fixed = {"estimator.rollout": (est.rollout, "episodes"), "estimator.constraint": (est.constraint, "none"),
             "estimator.value_coef": (est.value_coef, None), "estimator.target_kl": (est.target_kl, None),
             "estimator.normalize_advantages": (est.normalize_advantages, False)}
    for key, (v, want) in fixed.items():
        if v != want:
            raise ConfigError(
                f"{key}={v} does not combine with the group estimator settings (group_size, adv_scale, loss_agg, "
                f"ratio_level, clip_eps_high, kl_coef, dynamic_sampling); valid choice: "
                f"{key}={'null' if want is None else want}" + (" (use estimator.adv_scale=batch_std)."
                                                                if key.endswith("normalize_advantages") else "."))
    if est.clip_eps_high is not None:
        if est.correction != "clip":
            raise ConfigError(f"estimator.clip_eps_high={est.clip_eps_high} sets the upper clip of the ratio, but "
                              f"estimator.correction={est.correction} clips nothing; set estimator.correction=clip "
                              "or estimator.clip_eps_high=null.")
        if not (math.isfinite(est.clip_eps_high) and est.clip_eps_high > 0):
            raise ConfigError(f"estimator.clip_eps_high={est.clip_eps_high} must be a finite number > 0, or null.")
    if not (math.isfinite(est.kl_coef) and est.kl_coef >= 0):
        raise ConfigError(f"estimator.kl_coef={est.kl_coef} must be a finite number >= 0 (0: no KL term).")
    if est.loss_const is not None and not (math.isfinite(est.loss_const) and est.loss_const > 0):
        raise ConfigError(f"estimator.loss_const={est.loss_const} must be a finite number > 0, or null "
                          "(the time limit H).")
