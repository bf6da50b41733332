"""Fixed-horizon sampling: `num_envs` envs stepped `num_steps` times with auto-reset.

The env state is carried from one iteration to the next (`EnvCarry`, kept in the
TrainState), so episodes run across batch boundaries. The Batch is time-major [T, B] with
T = num_steps, B = num_envs and every step valid; a column holds the end of one episode,
whole episodes, and the start of another. Per step:

  obs       s_t (the reset observation on the step after an episode ended)
  next_obs  s_{t+1} *before* any reset, so GAE can bootstrap V(s_{t+1}) at a time-limit cut
  terminated / truncated   kept apart: termination does not bootstrap, truncation does,
            and so does the batch's last step (it is neither: GAE's recursion just stops)
  episode_t the step's index within its episode (`EnvCarry.t`, carried across batches, so an
            episode that began in an earlier batch keeps counting): t of the γ^t factor of
            `estimator.gamma_t` (`pgrun.core.estimators.discount_from_start`)

Per-episode accumulators (return, length) give the metrics of the episodes that *ended*
within the batch (`EpisodeStats`, `episode_metrics`).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from pgrun.core.batch import Batch, broadcast_dist
from pgrun.envs import reset, step
from pgrun.rollout.episodes import action_clipper

NAN = float("nan")
EPISODE_METRICS = ("return_mean", "return_std", "return_min", "return_max", "length_mean")


class EnvCarry(NamedTuple):
    """The envs between iterations.  Shapes for B envs."""

    state: Any            # env states, leaves [B, ...]
    obs: jax.Array        # [B, obs_dim]  the observation the next step acts on
    t: jax.Array          # [B] int32  steps taken in the current episode
    ep_return: jax.Array  # [B] float32  undiscounted return of the current episode so far


class EpisodeStats(NamedTuple):
    """Episodes that ended at step t of the batch.  All [T, B]."""

    done: jax.Array     # bool: an episode ended (terminated or truncated) at step t
    ret: jax.Array      # its undiscounted return (0 where not done)
    length: jax.Array   # its length in steps (0 where not done)


def init_env_carry(env, env_params, key, num_envs: int) -> EnvCarry:
    """B freshly reset envs."""
    state, obs = jax.vmap(lambda k: reset(env, env_params, k))(jax.random.split(key, num_envs))
    return EnvCarry(state, obs, jnp.zeros((num_envs,), jnp.int32), jnp.zeros((num_envs,), jnp.float32))


def _select(done: jax.Array, a, b):
    """where(done, a, b) leaf by leaf, done [B] broadcast over each leaf's trailing axes."""
    return jax.tree_util.tree_map(
        lambda x, y: jnp.where(done.reshape(done.shape + (1,) * (x.ndim - 1)), x, y), a, b)


def rollout_steps(env, env_params, policy, params, key, carry: EnvCarry, num_steps: int,
                  max_steps: int) -> tuple[EnvCarry, Batch, EpisodeStats]:
    """Step the B envs of `carry` num_steps times with π_params, resetting envs whose episode ended.

    An episode ends after step t when terminated_t or truncated_t (t + 1 = max_steps within the
    episode). Returns (carry after the last step, Batch [T, B], EpisodeStats [T, B]).
    """
    clip = action_clipper(env.action_space)
    num_envs = carry.obs.shape[0]
    env_step = jax.vmap(lambda s, a, k, t: step(env, env_params, s, a, k, t, max_steps))
    env_reset = jax.vmap(lambda k: reset(env, env_params, k))

    def body(c: EnvCarry, keys):
        k_act, k_env, k_reset = keys
        dist = policy.dist(params, c.obs)
        action = dist.sample(k_act)
        log_prob = dist.log_prob(action)
        out = env_step(c.state, clip(action), k_env, c.t)
        done = out.terminated | out.truncated
        ep_return = c.ep_return + out.reward
        s0, obs0 = env_reset(k_reset)
        new = EnvCarry(_select(done, s0, out.state), _select(done, obs0, out.obs),
                       jnp.where(done, 0, c.t + 1), jnp.where(done, 0.0, ep_return))
        record = Batch(obs=c.obs, action=action, log_prob=log_prob, reward=out.reward,
                       terminated=out.terminated, truncated=out.truncated,
                       valid=jnp.ones((num_envs,), bool), next_obs=out.obs,
                       dist=broadcast_dist(dist, (num_envs,)), episode_t=c.t)
        stats = EpisodeStats(done, jnp.where(done, ep_return, 0.0), jnp.where(done, c.t + 1, 0))
        return new, (record, stats)

    # every step's keys split up front: a split inside the loop body is itself a small loop
    k_act, k_env, k_reset = jax.random.split(key, 3)
    keys = (jax.random.split(k_act, num_steps), jax.random.split(k_env, (num_steps, num_envs)),
            jax.random.split(k_reset, (num_steps, num_envs)))
    carry, (batch, stats) = jax.lax.scan(body, carry, keys)
    return carry, batch, stats


def initial_episode_metrics() -> dict:
    """The metrics before any episode ended: NaN figures, 0 episodes."""
    return dict({name: jnp.float32(NAN) for name in EPISODE_METRICS}, episodes=jnp.int32(0))


def episode_metrics(stats: EpisodeStats, previous: dict) -> dict:
    """Return/length figures over the n episodes that ended in the batch, plus "episodes" = n.

    mean, std (population), min, max of the returns; mean length. When n = 0 (no episode
    ended, e.g. long episodes and a short batch) the previous batch's figures are repeated,
    so the run's last-iterations summary stays defined; "episodes" = 0 marks those rows.
    """
    done = stats.done.astype(jnp.float32)
    n = jnp.sum(done)
    denom = jnp.maximum(n, 1.0)
    mean = jnp.sum(stats.ret * done) / denom
    fresh = {
        "return_mean": mean,
        "return_std": jnp.sqrt(jnp.sum(((stats.ret - mean) ** 2) * done) / denom),
        "return_min": jnp.min(jnp.where(stats.done, stats.ret, jnp.inf)),
        "return_max": jnp.max(jnp.where(stats.done, stats.ret, -jnp.inf)),
        "length_mean": jnp.sum(stats.length * done) / denom,
    }
    out = {k: jnp.where(n > 0, fresh[k], previous[k]).astype(jnp.float32) for k in EPISODE_METRICS}
    out["episodes"] = n.astype(jnp.int32)
    return out
