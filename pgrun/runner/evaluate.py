"""`pgrun-eval <run dir> [episodes=10] [video=true] ...`: evaluate a run's final policies.

Restores the latest checkpoint of the run directory (every sweep point x seed), plays
`episodes` episodes per run with the stochastic policy (sampled actions) and as many with the
greedy one (dist.mode()), all in one jit(vmap) program, and writes `<run dir>/eval.json`:
per run and per point, the mean / std of the undiscounted return and the mean length.
`video=true` also renders one episode of the first `video_seeds` seeds of every point to
`<run dir>/videos/point<p>_seed<s>_<policy>.<gif|mp4>` (see pgrun/runner/video.py).
`env=gym:<id>` runs are evaluated on the gymnasium env, stepped on the host like in training
(`play_host`), and filmed with its own rgb_array renderer.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import fields
from typing import Any, NamedTuple, cast

import jax
import jax.numpy as jnp
import numpy as np
from omegaconf import OmegaConf

from pgrun.config import load
from pgrun.config.schema import EvalConfig
from pgrun.config.validate import validate_eval
from pgrun.errors import EXIT_CONFIG, ConfigError
from pgrun.runner.checkpoint import latest_step, read_meta, restore
from pgrun.runner.metrics import confidence_interval, write_json
from pgrun.train.build import is_host_env
from pgrun.train.program import make_train
from pgrun.train.sweep import init_runs, make_layout


class _Mode(NamedTuple):
    """A distribution whose `sample` is its mode: the greedy policy."""

    dist: Any

    def sample(self, key):
        return self.dist.mode()

    def log_prob(self, a):
        return self.dist.log_prob(a)


def greedy(policy):
    """The policy acting by argmax π(·|s) (Categorical) or the mean (Gaussian), its decoder's too."""
    sampling = policy.decoder
    decoder = None
    if sampling is not None:
        def step(params, cache, obs):
            dist, cache = sampling.step(params, cache, obs)
            return _Mode(dist), cache
        decoder = sampling._replace(step=step)
    return policy._replace(dist=lambda params, obs: _Mode(policy.dist(params, obs)), decoder=decoder)


def load_run(run_dir: str):
    """(cfg, layout, trainer, state [R, ...] host arrays, checkpoint meta) of the latest checkpoint."""
    if latest_step(run_dir) is None:
        raise ConfigError(f"{run_dir}: no checkpoint under {os.path.join(run_dir, 'checkpoints')} "
                          "(is it a pgrun run directory?).")
    stored = read_meta(run_dir)["config"]
    off = {"tensorboard": False, "wandb": False, "trackio": False}  # eval logs nothing (nor needs the packages)
    cfg = load({**stored, "logger": {**stored.get("logger", {}), **off}})
    layout, trainer = make_layout(cfg), make_train(cfg)
    keys = np.stack([np.asarray(jax.random.PRNGKey(s)) for s in layout.run_seeds])
    shapes = jax.eval_shape(lambda k, v: init_runs(trainer, k, v), keys, layout.values())
    template = jax.tree_util.tree_map(lambda s: np.zeros(s.shape, s.dtype), shapes)
    state, meta = restore(run_dir, template)
    return cfg, layout, trainer, state, meta


def play(trainer, params, key, episodes: int) -> dict[str, np.ndarray]:
    """Returns and lengths [R, episodes] of every run, stochastic and greedy (one program)."""
    from pgrun.rollout.episodes import rollout_episodes

    def one(params, key):
        out = {}
        for name, pol, k in (("stochastic", trainer.policy, key), ("greedy", greedy(trainer.policy), key)):
            b = rollout_episodes(trainer.env, trainer.env_params, pol, params, k, episodes, trainer.max_steps)
            out[name + "_return"] = jnp.sum(b.reward, axis=0)
            out[name + "_length"] = jnp.sum(b.valid, axis=0)
        return out

    runs = jax.tree_util.tree_leaves(params)[0].shape[0]
    return jax.device_get(jax.jit(jax.vmap(one))(params, jax.random.split(key, runs)))


def play_host(trainer, params, seed: int, episodes: int, mode: str) -> dict[str, np.ndarray]:
    """`play` for env=gym:<id>: returns and lengths [R, episodes] of every run, stochastic and
    greedy, from the gymnasium vector env (`HostSampler`, R·episodes copies). Run r's copies
    are reset with seeds derived from (seed, r), the same for both policies, and its actions
    use the r-th key of split(PRNGKey(seed), R), as `play` does."""
    from pgrun.rollout.host import HostSampler

    runs = jax.tree_util.tree_leaves(params)[0].shape[0]
    keys = jax.random.split(jax.random.PRNGKey(seed), runs)
    run_seeds = [int(np.random.SeedSequence([seed, r]).generate_state(1)[0]) for r in range(runs)]
    out: dict[str, np.ndarray] = {}
    for name, pol in (("stochastic", trainer.policy), ("greedy", greedy(trainer.policy))):
        sampler = HostSampler(trainer.env, pol, run_seeds, episodes, trainer.max_steps,
                              dict(trainer.env_params), mode)
        try:
            b = sampler.collect(params, keys)  # [R, T, episodes]
        finally:
            sampler.close()
        out[name + "_return"] = np.asarray(b.reward).sum(axis=1)
        out[name + "_length"] = np.asarray(b.valid).sum(axis=1)
    return out


def _figures(returns: np.ndarray, lengths: np.ndarray) -> dict:
    return {"return_mean": float(returns.mean()), "return_std": float(returns.std()),
            "length_mean": float(lengths.mean())}


def evaluate(run_dir: str, ec: EvalConfig) -> dict:
    """Evaluate every run of run_dir; write and return eval.json's contents."""
    validate_eval(ec)
    cfg, layout, trainer, state, meta = load_run(run_dir)
    if ec.video:
        from pgrun.runner.video import check_renderable

        check_renderable(trainer.env)
    if is_host_env(cfg):
        out = play_host(trainer, state.params, ec.seed, ec.episodes, cfg.env.vectorization_mode)
    else:
        out = play(trainer, state.params, jax.random.PRNGKey(ec.seed), ec.episodes)
    runs, points = [], []
    for r, (p, s) in enumerate(zip(layout.run_points, layout.run_seeds)):
        runs.append({"point": p, "seed": s, **layout.points[p], **{
            mode: _figures(out[mode + "_return"][r], out[mode + "_length"][r]) for mode in ("stochastic", "greedy")}})
    for p, values in enumerate(layout.points):
        sel = np.asarray(layout.run_points) == p
        fig = {"point": p, **values}
        for mode in ("stochastic", "greedy"):
            per_seed = out[mode + "_return"][sel].mean(axis=1)
            fig[mode] = {**_figures(out[mode + "_return"][sel], out[mode + "_length"][sel]),
                         "return_ci95_over_seeds": list(confidence_interval(per_seed))}
        points.append(fig)
    result = {"run_dir": os.path.abspath(run_dir), "checkpoint_iteration": int(meta["iteration"]),
              "env": cfg.env.name, "max_episode_steps": trainer.max_steps, "episodes": ec.episodes,
              "seed": ec.seed, "points": points, "runs": runs}
    if ec.video:
        result["videos"] = render_videos(run_dir, ec, layout, trainer, state, is_host_env(cfg))
    write_json(os.path.join(run_dir, "eval.json"), result)
    return result


def render_videos(run_dir, ec: EvalConfig, layout, trainer, state, host: bool = False) -> list[str]:
    from pgrun.runner.video import make_host_recorder, make_recorder, render_frames, write_video

    if host:  # env=gym:<id>: gymnasium plays and draws the episode
        policy = greedy(trainer.policy) if ec.video_policy == "greedy" else trainer.policy
        record_host = make_host_recorder(trainer.env, dict(trainer.env_params), policy, trainer.max_steps)
    else:
        record = make_recorder(trainer.env, trainer.env_params, trainer.policy, trainer.max_steps,
                               ec.video_policy == "greedy")
    paths = []
    for r, (p, s) in enumerate(zip(layout.run_points, layout.run_seeds)):
        if s not in layout.seeds[: ec.video_seeds]:
            continue
        params = jax.tree_util.tree_map(lambda x, r=r: x[r], state.params)
        key = jax.random.fold_in(jax.random.PRNGKey(ec.seed), r)
        if host:
            frames = record_host(params, key, int(np.random.SeedSequence([ec.seed, r]).generate_state(1)[0]))
        else:
            frames = render_frames(trainer.env, trainer.env_params, record(params, key))
        name = f"point{p}_seed{s}_{ec.video_policy}.{ec.video_format}"
        paths.append(write_video(frames, os.path.join(run_dir, "videos", name), ec.fps))
    return paths


def parse_args(argv: list[str] | None) -> tuple[str, EvalConfig]:
    keys = ", ".join(f"{f.name} (default {f.default})" for f in fields(EvalConfig))
    ap = argparse.ArgumentParser(
        prog="pgrun-eval", description=__doc__.split("\n\n")[1],
        epilog=f"Options (key=value): {keys}.")
    ap.add_argument("run_dir", help="a pgrun run directory (with checkpoints/)")
    ap.add_argument("options", nargs="*", help="key=value, e.g. episodes=20 video=true video_format=mp4")
    a = ap.parse_args(argv)
    bad = [o for o in a.options if "=" not in o]
    if bad:
        raise ConfigError(f"{bad[0]!r} is not key=value; options: {keys}.")
    try:
        ec = OmegaConf.merge(OmegaConf.structured(EvalConfig), OmegaConf.from_dotlist(a.options))
    except Exception as e:  # unknown key or a value of the wrong type
        raise ConfigError(f"{e.__class__.__name__}: {str(e).splitlines()[0]}; options: {keys}.") from None
    return a.run_dir, cast(EvalConfig, OmegaConf.to_object(ec))


def main(argv: list[str] | None = None) -> None:
    """Console entry point `pgrun-eval`."""
    try:
        run_dir, ec = parse_args(argv)
        result = evaluate(run_dir, ec)
    except ConfigError as e:
        print(f"pgrun-eval: config error: {e}", file=sys.stderr)
        sys.exit(EXIT_CONFIG)
    for p in result["points"]:
        values = " ".join(f"{k}={p[k]}" for k in p if k not in ("point", "stochastic", "greedy"))
        print(f"point {p['point']} {values}: return stochastic {p['stochastic']['return_mean']:.3f}, "
              f"greedy {p['greedy']['return_mean']:.3f} ({result['episodes']} episodes x "
              f"{len(result['runs']) // len(result['points'])} seeds)")
    for v in result.get("videos", []):
        print(f"video: {v}")
    print(f"wrote {os.path.join(run_dir, 'eval.json')}")


if __name__ == "__main__":
    main()
