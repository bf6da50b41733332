"""The training state of one run (one seed at one sweep point): everything an iteration reads
and writes, a pytree that is vmapped over runs, checkpointed and resumed."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax

from pgrun.core.optimal_baseline import BaselineStats


class Hyperparams(NamedTuple):
    """Scalars an iteration reads from the state rather than from the program, so a vmapped
    sweep can give each run its own (float32). Fields in alphabetical order: checkpoints list
    leaves in this order (as when this was a dict)."""

    entropy_coef: jax.Array  # c_H, the entropy bonus
    gae_lambda: jax.Array    # λ of GAE(λ)
    gamma: jax.Array         # the discount γ


class ReuseState(NamedTuple):
    """What a batch-reusing iteration (pgrun.train.offpolicy) carries across iterations, in
    alphabetical order like Hyperparams."""

    env: Any           # steps mode: the envs' carry (`rollout.steps.EnvCarry`); () in episode mode
    episodes: Any      # steps mode: figures of the last episodes that ended ({name: scalar}); ()
    kl_beta: jax.Array  # constraint=kl_penalty: the current β (a sweep sets its initial value)


class TrainState(NamedTuple):
    params: Any
    opt_state: Any
    critic_params: Any      # {} when the estimator has no critic
    critic_opt_state: Any
    hp: Hyperparams
    key: jax.Array
    iteration: jax.Array    # int32: iterations completed
    env_steps: jax.Array    # int32: valid env steps so far
    extra: ReuseState | tuple = ()  # () for the on-policy iteration
    # estimator.baseline=optimal: decayed sums over previous batches for b* (core.optimal_baseline); ()
    baseline: BaselineStats | tuple = ()
