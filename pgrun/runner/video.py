"""Render a policy's episode headless to a GIF (Pillow) or MP4 (imageio-ffmpeg).

The episode is played by the pure-JAX env (`make_recorder`, one `lax.scan`) and drawn after:
- classic-control envs (those with a `gym_id`) by gymnasium's own renderer: the NumPy env is
  made with `render_mode="rgb_array"` and its `unwrapped.state` set from our JAX state at each
  step (Pendulum's `last_u` from the action, for its torque arrow);
- the Particle envs with matplotlib (Agg): the box, the goal disc, the path so far;
- gymnax envs whose observation is an image or a grid (MinAtar [10, 10, C] channels, Pong-misc,
  bsuite DeepSea / Catch [H, W]) from that observation (`observation_frame`): gymnax 1.0.1 has no
  rgb_array renderer (its `visualize` draws MinAtar the same way, from the observation, with
  matplotlib figures), so each cell is coloured by its highest set channel, as MinAtar's and
  gymnax's own displays do, or by its value for a one-channel grid.
Other envs (Bandit, Chain, gymnax envs with a vector observation) have nothing to draw:
`render_frames` raises ConfigError saying why.
`env=gym:<id>` runs are played and drawn by the gymnasium env itself (`make_host_recorder`).
"""

from __future__ import annotations

import os
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from pgrun.envs import reset, step
from pgrun.rollout.episodes import action_clipper


class Episode(NamedTuple):
    states: Any          # [T + 1, ...] s_0 .. s_T (entries past the end repeat the last state); a pytree
                         # of such arrays for gymnax envs (GymnaxState)
    actions: np.ndarray  # [T, ...] a_t as applied (clipped)
    length: int          # steps that happened


def make_recorder(env, env_params, policy, max_steps: int, greedy: bool):
    """Compiled (params, key) -> Episode: one episode of at most max_steps with π_params (its
    mode if greedy), keeping the env states for drawing."""
    clip = action_clipper(env.action_space)

    @jax.jit
    def play(params, key):
        k0, k_steps = jax.random.split(key)
        s0, obs0 = reset(env, env_params, k0)

        def body(carry, xs):
            state, obs, alive = carry
            t, k = xs
            k_act, k_env = jax.random.split(k)
            dist = policy.dist(params, obs)
            a = clip(dist.mode() if greedy else dist.sample(k_act))
            out = step(env, env_params, state, a, k_env, t, max_steps)
            nxt = jax.tree_util.tree_map(lambda new, old: jnp.where(alive, new, old), out.state, state)
            return (nxt, out.obs, alive & ~(out.terminated | out.truncated)), (nxt, a, alive)

        xs = (jnp.arange(max_steps), jax.random.split(k_steps, max_steps))
        _, (states, actions, alive) = jax.lax.scan(body, (s0, obs0, jnp.bool_(True)), xs)
        both = jax.tree_util.tree_map(lambda first, rest: jnp.concatenate([jnp.asarray(first)[None], rest]), s0, states)
        return both, actions, jnp.sum(alive)

    def record(params, key) -> Episode:
        states, actions, length = jax.device_get(play(params, key))
        return Episode(jax.tree_util.tree_map(np.asarray, states), np.asarray(actions), int(length))

    return record


def make_host_recorder(env, kwargs: dict, policy, max_steps: int):
    """(params, key, seed) -> RGB frames [H, W, 3] uint8 of one episode of π_params, for
    `env=gym:<id>` (a `HostEnv`): the gymnasium env itself, made with render_mode="rgb_array"
    and time limit max_steps, reset with `seed` and stepped on the host; step t's action is
    sampled with fold_in(key, t), as in training (pass a greedy policy for the mode)."""
    from pgrun.rollout.host import make_sample_actions

    act = make_sample_actions(policy)

    def record(params, key, seed: int) -> list[np.ndarray]:
        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # headless pygame
        os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
        import gymnasium

        one = jax.tree_util.tree_map(lambda x: x[None], params)  # a seed axis of 1
        genv = gymnasium.make(env.gym_id, render_mode="rgb_array", max_episode_steps=max_steps, **kwargs)
        try:
            raw, _ = genv.reset(seed=seed)
            frames = [np.asarray(genv.render(), np.uint8)]
            for t in range(max_steps):
                a, _ = jax.device_get(act(one, env.encode_single(raw)[None, None], key[None], np.int32(t)))
                raw, _, term, trunc, _ = genv.step(env.env_action(np.asarray(a)[0])[0])
                frames.append(np.asarray(genv.render(), np.uint8))
                if term or trunc:
                    break
        finally:
            genv.close()
        return frames

    return record


def check_renderable(env) -> None:
    """ConfigError unless `render_frames` (or, for env=gym:<id>, `make_host_recorder`) can draw env."""
    from pgrun.errors import ConfigError

    if hasattr(env, "render_modes"):  # a HostEnv: gymnasium renders it, if it can
        if "rgb_array" in env.render_modes:
            return
        raise ConfigError(f"video=true: env={env.name} does not render rgb_array frames (its render modes: "
                          f"{', '.join(env.render_modes) or 'none'}); evaluate it without video=true.")
    if env.name.startswith("Particle") or env.gym_id is not None:
        return
    if hasattr(env, "gymnax_env"):
        shape = gymnax_obs_shape(env)
        if len(shape) in (2, 3):
            return
        raise ConfigError(f"video=true: env={env.name} cannot be filmed: gymnax 1.0.1 has no rgb_array renderer, "
                          f"and its observation is a vector of shape {shape}, not an image or grid pgrun could draw "
                          "(videos of gymnax envs exist for image or grid observations: the MinAtar games, "
                          "Pong-misc, DeepSea-bsuite, Catch-bsuite); evaluate it without video=true.")
    raise ConfigError(f"video=true: env={env.name} has no renderer; videos exist for the classic-control "
                      "envs (CartPole, Acrobot, MountainCar, MountainCarContinuous, Pendulum) and Particle.")


def render_frames(env, env_params, episode: Episode) -> list[np.ndarray]:
    """RGB frames [H, W, 3] uint8 of s_0 .. s_length."""
    check_renderable(env)
    n = episode.length + 1
    if env.name.startswith("Particle"):
        return _particle_frames(env_params, episode.states[:n])
    if hasattr(env, "gymnax_env"):
        return [observation_frame(o) for o in np.asarray(episode.states.obs)[:n]]
    return _gym_frames(env.gym_id, episode, n)


def gymnax_obs_shape(env) -> tuple[int, ...]:
    """The shape of a gymnax env's own observation (before pgrun flattens it)."""
    return tuple(int(d) for d in env.gymnax_env.observation_space(env.default_params).shape)


# cell colours: background, then one per channel (MinAtar has at most 10; more cycle)
PALETTE = np.array([(0, 0, 0), (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
                    (140, 86, 75), (227, 119, 194), (188, 189, 34), (23, 190, 207), (255, 255, 255)], np.uint8)


def observation_frame(obs: np.ndarray, cell_px: int = 16) -> np.ndarray:
    """RGB frame [H·cell_px, W·cell_px, 3] uint8 of a gymnax image / grid observation.

    [H, W, C] channels: cell (i, j) gets PALETTE[c + 1] for the highest channel c with
    obs[i, j, c] > 0, black where none is set (MinAtar's and gymnax's display rule).
    [H, W] grid: grey level clip(obs, 0, 1) (DeepSea's one-hot position, Catch's ball and paddle)."""
    obs = np.asarray(obs, np.float32)
    if obs.ndim == 3:
        C = obs.shape[-1]
        top = np.max(np.where(obs > 0, np.arange(1, C + 1), 0), axis=-1)  # 0: no channel set
        colours = np.concatenate([PALETTE[:1], PALETTE[1 + np.arange(C) % (len(PALETTE) - 1)]])
        img = colours[top]
    else:
        img = np.repeat((np.clip(obs, 0.0, 1.0) * 255).astype(np.uint8)[..., None], 3, axis=-1)
    return np.repeat(np.repeat(img, cell_px, axis=0), cell_px, axis=1)


def _gym_frames(gym_id: str, ep: Episode, n: int) -> list[np.ndarray]:
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # headless pygame
    os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
    import gymnasium

    genv = gymnasium.make(gym_id, render_mode="rgb_array")
    genv.reset(seed=0)
    raw: Any = genv.unwrapped  # a classic-control env: its `state` is set directly
    frames = []
    for t in range(n):
        raw.state = np.asarray(ep.states[t], np.float64)
        if hasattr(raw, "last_u"):  # Pendulum draws the torque of the action that led here
            raw.last_u = None if t == 0 else float(np.ravel(ep.actions[t - 1])[0])
        frames.append(np.asarray(genv.render(), np.uint8))
    genv.close()
    return frames


def _particle_frames(p, states: np.ndarray, size_px: int = 240) -> list[np.ndarray]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Circle

    fig = Figure(figsize=(size_px / 80, size_px / 80), dpi=80)
    canvas = FigureCanvasAgg(fig)  # headless: draw into memory, whatever the global backend
    ax = fig.add_axes((0, 0, 1, 1))
    box = float(p.box)
    ax.set_xlim(-box, box)
    ax.set_ylim(-box, box)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.add_patch(Circle((0, 0), float(p.goal_radius), color="tab:green", alpha=0.6))
    (path,) = ax.plot([], [], "-", color="tab:gray", lw=1)
    (dot,) = ax.plot([], [], "o", color="tab:blue", ms=8)
    frames = []
    for t in range(len(states)):
        path.set_data(states[: t + 1, 0], states[: t + 1, 1])
        dot.set_data(states[t : t + 1, 0], states[t : t + 1, 1])
        canvas.draw()
        frames.append(np.asarray(canvas.buffer_rgba())[..., :3].copy())
    return frames


def write_video(frames: list[np.ndarray], path: str, fps: int) -> str:
    """Write frames to path (.gif with Pillow, .mp4 with imageio-ffmpeg); returns path."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    if path.endswith(".gif"):
        from PIL import Image

        images = [Image.fromarray(f) for f in frames]
        images[0].save(path, save_all=True, append_images=images[1:], duration=max(1, round(1000 / fps)), loop=0)
    else:
        import imageio.v2 as imageio

        imageio.mimwrite(path, frames, fps=fps, macro_block_size=2)  # type: ignore[arg-type]  # imageio stub: List[ArrayLike], invariant
    return path
