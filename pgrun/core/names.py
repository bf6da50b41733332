"""The vocabulary the config layer checks, importable without JAX: the mode names the math in
`pgrun.core` implements, the env-name syntax and the Tokens task facts that `pgrun.envs` defines,
and the integer rules (minibatch units, tabular prefix size) a config must satisfy.

Plain Python only (no jax, flax, numpy or gymnasium): `pgrun --help` and a config error import
this module, not the math, so they answer without loading JAX. The modules that implement each
name import it from here (one definition).
"""

from __future__ import annotations

# pgrun.core.estimators: the weight Ψ_t and the baseline b of the surrogate (notes 04)
WEIGHTS = ("total_return", "reward_to_go", "gae")
BASELINES = ("none", "batch_mean", "batch_mean_time", "value", "optimal")

# pgrun.core.group: the group estimators (GRPO, RLOO, Dr. GRPO, DAPO, GSPO)
GROUP_BASELINES = ("group_mean", "group_loo")
ADV_SCALES = ("none", "group_std", "batch_std")
AGGREGATIONS = ("seq_sum", "seq_mean_token_mean", "token_sum_const", "batch_token_mean")
RATIO_LEVELS = ("token", "sequence")
KL_ESTIMATORS = ("k1_reward", "k3_loss")

# pgrun.core.offpolicy: batch reuse
ROLLOUTS = ("episodes", "steps")
CORRECTIONS = ("none", "trajectory", "per_decision", "clip")
CONSTRAINTS = ("none", "kl_penalty", "trust_region")

# pgrun.core.policies: the activations of the MLP / CNN (flax.linen functions of these names) and the
# feature maps of softmax_linear. A learned Gaussian log σ is clipped to [LOG_STD_MIN, LOG_STD_MAX] =
# [-20, 2] (σ ∈ [2.1e-9, 7.39]), the bounds of Stable-Baselines3's SAC: inside them value and gradient
# are unchanged.
ACTIVATION_NAMES = ("tanh", "relu", "elu", "gelu", "silu")
FEATURE_MAPS = ("onehot_state", "env")
LOG_STD_MIN, LOG_STD_MAX = -20.0, 2.0

# pgrun.envs: the env-name prefixes of any gymnasium env stepped on the host (pgrun.envs.host) and of
# any gymnax env (pgrun.envs.gymnax_env); the Tokens env's tasks and largest vocabulary (pgrun.envs.tokens)
GYM_PREFIX = "gym:"
GYMNAX_PREFIX = "gymnax:"
TOKEN_TASKS = ("copy", "reverse", "sort", "parity", "sum_mod", "add")
MAX_VOCAB = 16


def needs_critic(weight: str, baseline: str) -> bool:
    """Whether the estimator learns a critic V_φ(s): the GAE weight or the value baseline."""
    return weight == "gae" or baseline == "value"


def splits_by_column(rollout: str, correction: str) -> bool:
    """Minibatches take whole columns (episodes; envs in steps mode for `trajectory`, whose
    weight needs whole segments), or else shuffled single transitions (steps mode)."""
    return rollout == "episodes" or correction == "trajectory"


def minibatch_unit(rollout: str, correction: str, episodes: int, num_envs: int,
                   num_steps: int) -> tuple[str, int]:
    """(name, count) of the units that `estimator.minibatches` must divide evenly."""
    if rollout == "episodes":
        return "episodes (episodes_per_iteration)", int(episodes)
    if splits_by_column(rollout, correction):
        return "env columns (num_envs; correction=trajectory keeps segments whole)", int(num_envs)
    return "transitions (num_envs x num_steps)", int(num_envs) * int(num_steps)


def prefix_table_size(prompt_len: int, vocab: int, horizon: int) -> int:
    """Rows of the tabular prefix policy: V^P prompts × Σ_{t<H} V^t prefixes."""
    return vocab ** prompt_len * sum(vocab ** t for t in range(horizon))


def answer_length(task: str, prompt_len: int) -> int:
    """|y|, the length of the Tokens task's answer to a prompt of `prompt_len` tokens."""
    if task in ("parity", "sum_mod"):
        return 1
    if task == "add":
        return prompt_len // 2 + 1
    return prompt_len
