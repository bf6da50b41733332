"""Episode sampling for `env=gym:<id>`: a gymnasium vector env on the host, π_θ jitted.

One vector env holds N = S·B copies (S seeds × B episodes per iteration); env i belongs to
seed i // B. Each iteration resets all N copies and steps them until every copy has ended
its episode (terminated, or truncated by the time limit T) or T steps have passed; copies
that end early are auto-reset by gymnasium (SAME_STEP) and keep stepping, but those steps
are masked out (valid = False, reward 0, obs 0). Per step the host sends obs [S, B, D] to
one jitted `sample_actions` and gets actions and log-probs back. The result is the same
`Batch` the pure-JAX rollout makes, with a leading seed axis: [S, T, B, ...].
"""

from __future__ import annotations

import time
from typing import Any, Callable, cast

import jax
import numpy as np
from gymnasium import spaces

from pgrun.core.batch import Batch
from pgrun.envs.host import HostEnv


def make_sample_actions(policy) -> jax.stages.Wrapped:
    """jit(sample_actions)(params [S, ...], obs [S, B, D], keys [S], t) -> (action, log_prob).

    action [S, B] (discrete) or [S, B, act_dim] as sampled (unclipped); log_prob [S, B].
    Seed s's step-t key is fold_in(keys[s], t). (With the rbg PRNG a vmapped draw is not the
    unbatched one, so a seed's actions depend on S, as on the pure-JAX path.)
    """

    def one_seed(params, obs, key, t):
        dist = policy.dist(params, obs)
        action = dist.sample(jax.random.fold_in(key, t))
        return action, dist.log_prob(action)

    return jax.jit(jax.vmap(one_seed, in_axes=(0, 0, 0, None)))


def env_seeds(seeds: list[int], per_seed: int) -> list[int]:
    """Reset seeds of the N = S·per_seed copies, derived from each run seed (independent of S)."""
    return [int(np.random.SeedSequence([s, b]).generate_state(1)[0]) for s in seeds for b in range(per_seed)]


class HostSampler:
    """Samples B whole episodes per seed per iteration from a gymnasium vector env."""

    def __init__(self, env: HostEnv, policy, seeds: list[int], episodes: int, max_steps: int,
                 kwargs: dict, mode: str = "sync"):
        self.env, self.S, self.B, self.T = env, len(seeds), episodes, max_steps
        self.N = self.S * self.B
        self.vec = env.make_vec(self.N, max_steps, kwargs, mode)
        self.sample_actions = make_sample_actions(policy)
        self._reset_seeds: list[int] | None = env_seeds(seeds, episodes)  # used by the first reset only
        self.discrete = isinstance(env.action_space, spaces.Discrete)
        self.act_shape = () if self.discrete else (int(np.prod(cast(tuple[int, ...], env.action_space.shape))),)
        self.obs_dim = int(env.observation_space.shape[0])
        self.vector_steps = 0  # vector-env steps taken, masked ones included
        self.policy_s = 0.0    # seconds in sample_actions: dispatch, compute, device<->host copies
        self.env_s = 0.0       # seconds in the vector env's reset/step and obs encoding

    def compile(self, params, keys) -> None:
        """Compile sample_actions ahead of the first iteration (for timing)."""
        obs = np.zeros((self.S, self.B, self.obs_dim), np.float32)
        self.sample_actions.lower(params, obs, keys, np.int32(0)).compile()

    def collect(self, params, keys) -> Batch:
        """Run one iteration's episodes with π_params; keys [S] are this iteration's rollout keys.

        Returns a Batch of NumPy arrays [S, T, B, ...].
        """
        S, B, T, N = self.S, self.B, self.T, self.N
        seed, self._reset_seeds = self._reset_seeds, None
        t0 = time.perf_counter()
        raw, _ = self.vec.reset(seed=seed)
        obs = self.env.encode_obs(raw, N)
        self.env_s += time.perf_counter() - t0
        act_dtype = np.int32 if self.discrete else np.float32
        zeros: Callable[..., Any] = np.zeros  # this Batch holds NumPy arrays
        buf = Batch(
            obs=zeros((S, T, B, self.obs_dim), np.float32),
            action=zeros((S, T, B) + self.act_shape, act_dtype),
            log_prob=zeros((S, T, B), np.float32), reward=zeros((S, T, B), np.float32),
            terminated=zeros((S, T, B), bool), truncated=zeros((S, T, B), bool),
            valid=zeros((S, T, B), bool), next_obs=zeros((S, T, B, self.obs_dim), np.float32))
        alive = np.ones(N, bool)
        for t in range(T):
            t0 = time.perf_counter()
            action, log_prob = jax.device_get(
                self.sample_actions(params, obs.reshape(S, B, -1), keys, np.int32(t)))
            t1 = time.perf_counter()
            action = np.asarray(action).reshape((N,) + self.act_shape)
            raw, reward, term, trunc, info = self.vec.step(self.env.env_action(action))
            self.vector_steps += 1
            nxt = self.env.encode_obs(raw, N)
            next_obs = nxt.copy()
            if "final_obs" in info:  # the pre-reset observation of copies that just ended
                for i in np.nonzero(info["_final_obs"])[0]:
                    next_obs[i] = self.env.encode_single(info["final_obs"][i])
            self.policy_s += t1 - t0
            self.env_s += time.perf_counter() - t1
            term = np.asarray(term, bool)
            trunc = (np.asarray(trunc, bool) | (t + 1 >= T)) & ~term
            m = alive
            rec = {"obs": np.where(m[:, None], obs, 0.0), "action": action,
                   "log_prob": np.where(m, log_prob.reshape(N), 0.0), "reward": np.where(m, reward, 0.0),
                   "terminated": term & m, "truncated": trunc & m, "valid": m,
                   "next_obs": np.where(m[:, None], next_obs, 0.0)}
            for name, x in rec.items():
                getattr(buf, name)[:, t] = np.asarray(x).reshape((S, B) + np.shape(x)[1:])
            alive = alive & ~(term | trunc)
            obs = nxt
            if not alive.any():
                break
        return buf

    def rng_state(self) -> list[dict]:
        """Each copy's NumPy Generator state (`env.np_random`, JSON-ready; PCG64 for gymnasium's envs).

        Together with the seeds' JAX keys this is all the randomness the next iteration reads:
        `collect` resets every copy first, so no episode and no other env state carries over
        from one iteration to the next (for envs that keep nothing across `reset`, as
        gymnasium's own)."""
        return [g.bit_generator.state for g in self.vec.get_attr("np_random")]

    def set_rng_state(self, states: list[dict]) -> None:
        """Continue from `rng_state()`'s output (a resumed run): the next `collect` resets every
        copy with its restored generator instead of reseeding it from the run seeds."""
        if len(states) != self.N:
            raise ValueError(f"{len(states)} generator states for {self.N} env copies")
        gens = []
        for st in states:
            g = np.random.Generator(getattr(np.random, st["bit_generator"])())
            g.bit_generator.state = st
            gens.append(g)
        self.vec.set_attr("np_random", gens)
        self._reset_seeds = None

    def close(self) -> None:
        self.vec.close()
