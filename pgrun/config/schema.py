"""The typed config: dataclass schemas registered in Hydra's ConfigStore, and the check of key names.

The schemas are the single description of every key; `pgrun.config.loader` turns a composed
`DictConfig` into these dataclasses once, validated.
"""

from __future__ import annotations

import dataclasses
import difflib
import typing
import warnings
from dataclasses import dataclass, field, is_dataclass
from typing import Any, Dict, List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, OmegaConf


@dataclass
class EnvConfig:
    name: str = MISSING
    max_episode_steps: Optional[int] = None  # None: the env's own time limit
    params: Dict[str, Any] = field(default_factory=dict)  # physics overrides, e.g. gravity
    id: Optional[str] = None  # env=gym only: the gymnasium id (env=gym:<id> sets it)
    vectorization_mode: str = "sync"  # env=gym only: gymnasium vector env, sync | async
    # env=Tokens only (pgrun/envs/tokens.py); null elsewhere
    task: Optional[str] = None  # copy | reverse | sort | parity | sum_mod | add
    prompt_len: Optional[int] = None  # P prompt tokens
    vocab: Optional[int] = None  # V answer tokens (plus EOS), 2..16
    horizon: Optional[int] = None  # H, the most tokens a completion has


@dataclass
class PolicyConfig:
    name: str = MISSING  # softmax_linear | gaussian_linear | mlp | cnn
    features: str = "onehot_state"  # softmax_linear: onehot_state | env
    hidden: List[int] = field(default_factory=lambda: [64, 64])
    channels: List[int] = field(default_factory=lambda: [16])  # cnn: filters of each 3x3 conv layer
    activation: str = "tanh"
    init_sigma: float = 1.0  # Gaussian policies: initial (or fixed) standard deviation
    learn_sigma: bool = True  # gaussian_linear: learn σ too, or only θ
    width: int = 32  # transformer | gru: model width
    layers: int = 1  # transformer: decoder blocks
    heads: int = 2  # transformer: attention heads
    # transformer: sample with a KV cache (true) or recompute the sequence every token (false); the same π.
    # null (auto): the cache, measured faster at every size (docs/llm.md). Other policies have none.
    kv_cache: Optional[bool] = None


@dataclass
class EstimatorConfig:
    name: str = MISSING
    weight: str = "reward_to_go"  # total_return | reward_to_go | gae
    baseline: str = "none"  # none | batch_mean | batch_mean_time | value | optimal
    gae_lambda: float = 0.95
    normalize_advantages: bool = False
    # multiply step t's term by γ^t (t from the episode's start): the gradient of the discounted
    # J = E[Σ γ^t r_t] for weights reward_to_go and gae; false: the lecture's form, unbiased for γ = 1 only
    gamma_t: bool = False
    entropy_coef: float = 0.0
    critic_lr: float = 1e-3
    critic_hidden: List[int] = field(default_factory=lambda: [64, 64])
    critic_updates: int = 1  # critic gradient steps per iteration
    # baseline=optimal: λ of the decayed sums of g·u and g² over previous batches that estimate
    # b* (pgrun.core.optimal_baseline); 0: leave-one-out inside the batch only
    baseline_decay: float = 0.98
    # -- reusing a batch (notes 04, off-policy): see pgrun.core.offpolicy / pgrun.train.offpolicy
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
    # -- group estimators for sequence tasks (docs/llm.md, pgrun.core.group, pgrun.train.group)
    group_size: int = 1  # G episodes per start state (prompt): episodes_per_iteration = prompts x G
    adv_scale: str = "none"  # none | group_std (GRPO) | batch_std (REINFORCE++)
    # seq_sum (the lecture's) | seq_mean_token_mean (GRPO) | token_sum_const (Dr. GRPO) | batch_token_mean (DAPO)
    loss_agg: str = "seq_sum"
    loss_const: Optional[float] = None  # token_sum_const: the constant C; None: the time limit H
    ratio_level: str = "token"  # token | sequence (GSPO, length-normalised)
    clip_eps_high: Optional[float] = None  # clip-higher: ratio clipped to [1 - clip_eps, 1 + this] (DAPO)
    kl_coef: float = 0.0  # β of the KL to the frozen initial policy; 0: off
    kl_estimator: str = "k3_loss"  # k1_reward (folded into r_t) | k3_loss (added to the loss)
    dynamic_sampling: bool = False  # mask out groups whose returns are all equal (DAPO)


@dataclass
class OptimizerConfig:
    name: str = MISSING  # adam | sgd
    lr: float = 1e-2
    max_grad_norm: Optional[float] = None  # global-norm clipping; None: off
    schedule: str = "constant"  # constant | linear | cosine (step size decays to 0 over the run)


@dataclass
class LoggerConfig:
    tensorboard: bool = False  # also write TensorBoard event files under <run dir>/tensorboard/
    wandb: bool = False  # also log to Weights & Biases (extra `wandb`), files under <run dir>/wandb/
    wandb_project: str = "pgrun"
    wandb_mode: str = "offline"  # offline (nothing leaves the machine; `wandb sync` later) | online
    trackio: bool = False  # also log to Trackio's local store (extra `trackio`)
    trackio_project: str = "pgrun"


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

    def to_dict(self) -> dict[str, Any]:
        """Plain containers, as stored in summary.json and checkpoints (Hydra's `to_container`)."""
        return dataclasses.asdict(self)


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
    node: Any = Config
    path: list[str] = []
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


def _key_type(dotted: str) -> Any:
    """The schema's type hint of a dotted key (Optional kept), or None when it is not a schema key."""
    node: Any = Config
    for part in dotted.split("."):
        if typing.get_origin(node) is typing.Union:  # Optional[group]: step into the group
            node = next(a for a in typing.get_args(node) if a is not type(None))
        if not (isinstance(node, type) and is_dataclass(node)):
            return None
        node = typing.get_type_hints(node).get(part)
        if node is None:
            return None
    return node


_TYPE_WORDS = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}


def describe_type(hint: Any) -> str:
    """A type hint in words: Optional[int] -> 'an integer or null', List[int] -> 'a list of integers'."""
    if typing.get_origin(hint) is typing.Union:
        inner = [a for a in typing.get_args(hint) if a is not type(None)]
        return " or ".join(describe_type(a) for a in inner) + " or null"
    if typing.get_origin(hint) in (list, typing.List):
        (item,) = typing.get_args(hint) or (Any,)
        word = {int: "integers", float: "numbers", str: "strings"}.get(item, "values")
        return f"a list of {word} in brackets, e.g. [64,64]" if item is int else f"a list of {word} in brackets"
    if typing.get_origin(hint) in (dict, typing.Dict):
        return "a dict of keys"
    if isinstance(hint, type) and is_dataclass(hint):
        return "a group of keys"
    return _TYPE_WORDS.get(hint, getattr(hint, "__name__", str(hint)))


def type_error_message(dotted: str, value: str) -> str:
    """One paragraph for a command-line value of the wrong type, e.g. `iterations=abc`:
    the key, the bad value and the type the key takes."""
    hint = _key_type(dotted)
    takes = f"takes {describe_type(hint)}" if hint is not None else "has another type"
    return f"{dotted}={value} is not valid: {dotted} {takes}, and {value!r} is not one."


def closest_option(value: str, options: list[str]) -> str | None:
    """The option a misspelt group choice most likely meant (case first: cartpole -> CartPole),
    or None."""
    lower = {o.lower(): o for o in options}
    if value.lower() in lower:
        return lower[value.lower()]
    close = difflib.get_close_matches(value.lower(), list(lower), n=1, cutoff=0.6)
    return lower[close[0]] if close else None
