"""Any installed gymnasium env, stepped on the host: `env=gym:<id>` (e.g. `gym:CartPole-v1`).

`HostEnv` carries the facts the trainer reads from a `PGEnv` (name, observation/action
space, max_episode_steps, solved_threshold), taken from the gymnasium spec and one
instance, and builds the vector env `pgrun.rollout.host` steps. Observations reach the
policy flattened to float32 [obs_dim] (`gymnasium.spaces.flatten_space`: Box reshaped,
Discrete one-hot, Tuple/Dict concatenated); actions must be Discrete or Box.
"""

from __future__ import annotations

import difflib
import functools
from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces

from pgrun.core.names import GYM_PREFIX
from pgrun.errors import ConfigError, MissingExtra


def _cannot_make(gym_id: str, err: Exception) -> ConfigError:
    """One-paragraph error for an id gymnasium cannot make: unknown (with close matches from
    gymnasium's registry) or registered but failing (e.g. Box2D or MuJoCo not installed)."""
    entry = str(getattr(gymnasium.registry.get(gym_id), "entry_point", ""))
    if isinstance(err, gymnasium.error.DependencyNotInstalled) and "box2d" in entry:
        return MissingExtra.needs(f"env=gym:{gym_id}", "Box2D (gymnasium's box2d envs)", "box2d",
                                  "pick a pure-JAX env such as env=CartPole")
    if gym_id in gymnasium.registry:
        return ConfigError(f"env=gym:{gym_id} is registered with gymnasium but could not be made "
                           f"({type(err).__name__}: {err}).")
    close = difflib.get_close_matches(gym_id, list(gymnasium.registry), n=5, cutoff=0.5)
    hint = f"close matches: {', '.join('gym:' + c for c in close)}" if close else (
        "no close match; list the ids with python -c 'import gymnasium; gymnasium.pprint_registry()'")
    return ConfigError(f"env=gym:{gym_id} is not a gymnasium environment "
                       f"({type(err).__name__}: {err}); {hint}.")


class HostEnv:
    """A gymnasium env's facts for the runner, mirroring PGEnv's class attributes.

    observation_space: Box float32 [obs_dim], the flattened single observation.
    action_space: the env's single action space (Discrete or Box).
    max_episode_steps / solved_threshold: the spec's time limit / reward_threshold.
    render_modes: the env's metadata["render_modes"] ("rgb_array" among them: pgrun-eval video=true).
    """

    def __init__(self, gym_id: str):
        try:
            spec = gymnasium.spec(gym_id)
            env = gymnasium.make(gym_id)
        except gymnasium.error.Error as e:  # NameNotFound, VersionNotFound, DependencyNotInstalled, ...
            raise _cannot_make(gym_id, e) from None
        self.gym_id, self.name = gym_id, GYM_PREFIX + gym_id
        self.raw_observation_space, self.action_space = env.observation_space, env.action_space
        self.render_modes: tuple[str, ...] = tuple(env.metadata.get("render_modes") or ())
        env.close()
        self.max_episode_steps: int | None = spec.max_episode_steps
        self.solved_threshold: float | None = spec.reward_threshold
        self._check_action_space()
        try:
            flat = spaces.flatten_space(self.raw_observation_space)
        except NotImplementedError:
            flat = None
        if not isinstance(flat, spaces.Box):
            raise ConfigError(
                f"env={self.name} has a {type(self.raw_observation_space).__name__} observation space, "
                "which does not flatten to a vector; pgrun's policies take Box, Discrete, Tuple, Dict, "
                "MultiDiscrete or MultiBinary observations.")
        self.observation_space = spaces.Box(-np.inf, np.inf, (int(np.prod(flat.shape)),), np.float32)

    def _check_action_space(self) -> None:
        space = self.action_space
        if isinstance(space, spaces.Discrete) or (
                isinstance(space, spaces.Box) and np.issubdtype(space.dtype, np.floating)):
            return
        raise ConfigError(
            f"env={self.name} has a {space} action space, which no pgrun policy can sample: "
            "softmax_linear and mlp handle Discrete actions, gaussian_linear and mlp handle "
            "continuous Box actions; MultiDiscrete, MultiBinary, Tuple, Dict and integer Box "
            "action spaces are not supported.")

    def params_from_overrides(self, overrides: dict[str, Any] | None) -> dict:
        """`env.params.<k>=v` become keyword arguments of gymnasium.make (checked here)."""
        kwargs = dict(overrides or {})
        if kwargs:
            try:
                gymnasium.make(self.gym_id, **kwargs).close()
            except TypeError as e:
                raise ConfigError(f"env.params: gymnasium.make('{self.gym_id}', **{kwargs}) failed: {e}; "
                                  "env.params.<key> are passed to the env's constructor.") from None
        return kwargs

    def make_vec(self, num_envs: int, max_steps: int, kwargs: dict, mode: str = "sync"):
        """gymnasium vector env of num_envs copies, time limit max_steps, SAME_STEP autoreset
        (a finished env is reset inside the step that ended it; its final observation is in
        info["final_obs"]). "async" runs each copy in its own process, started by a fork server
        (forking this process itself could deadlock: JAX is multithreaded)."""
        vector_kwargs: dict[str, Any] = {"autoreset_mode": gymnasium.vector.AutoresetMode.SAME_STEP}
        wrappers = None
        if mode == "async":
            vector_kwargs["context"] = "forkserver"
            wrappers = [_worker_ignores_ctrl_c]
        return gymnasium.make_vec(self.gym_id, num_envs=num_envs, vectorization_mode=mode,
                                  max_episode_steps=max_steps, vector_kwargs=vector_kwargs, wrappers=wrappers,
                                  **kwargs)

    def encode_obs(self, obs, n: int) -> np.ndarray:
        """Batched raw observations of n envs (as the vector env returns them) -> float32 [n, obs_dim]."""
        space = self.raw_observation_space
        if isinstance(space, spaces.Box):
            return np.asarray(obs, np.float32).reshape(n, -1)
        if isinstance(space, spaces.Discrete):
            return np.eye(space.n, dtype=np.float32)[np.asarray(obs) - space.start]
        batched = gymnasium.vector.utils.batch_space(space, n)
        rows = [spaces.flatten(space, o) for o in gymnasium.vector.utils.iterate(batched, obs)]
        return np.asarray(rows, np.float32).reshape(n, -1)

    def encode_single(self, obs) -> np.ndarray:
        """One raw observation -> float32 [obs_dim]."""
        return np.asarray(spaces.flatten(self.raw_observation_space, obs), np.float32).reshape(-1)

    def env_action(self, action: np.ndarray) -> np.ndarray:
        """Sampled actions [N] or [N, act_dim] -> what the vector env's step takes: Discrete
        shifted by its start, Box clipped to its bounds and reshaped to [N, *shape]."""
        space = self.action_space
        if isinstance(space, spaces.Discrete):
            return np.asarray(action, np.int64) + int(space.start)
        assert isinstance(space, spaces.Box)  # _check_action_space: Discrete or Box
        a = np.asarray(action).reshape((len(action),) + space.shape)
        return np.clip(a, space.low, space.high).astype(space.dtype)


def _worker_ignores_ctrl_c(env):
    """Applied to each env where it is made, i.e. inside an async worker process: the worker
    ignores SIGINT. Ctrl-C in a terminal signals the whole process group; the main process
    then finishes the iteration and checkpoints (`pgrun.runner.interrupt`), which needs the
    workers alive (gymnasium's worker would die on KeyboardInterrupt). Never in this process."""
    import multiprocessing
    import signal

    if multiprocessing.parent_process() is not None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    return env


@functools.lru_cache(maxsize=32)
def make_host_env(gym_id: str) -> HostEnv:
    """HostEnv for `gym_id` (cached: the runner asks for it more than once)."""
    return HostEnv(gym_id)
