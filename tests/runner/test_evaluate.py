"""pgrun-eval: final policies of every run, stochastic and greedy, eval.json, headless videos."""

from __future__ import annotations

import importlib.util
import json
import os

import numpy as np
import pytest
from scale_helpers import config

from pgrun.config.schema import EvalConfig
from pgrun.errors import ConfigError
from pgrun.runner.evaluate import evaluate, main
from pgrun.runner.loop import run


def _distinct_frames(frames) -> int:
    return len({f.tobytes() for f in frames})


def test_eval_json_and_particle_gif(tmp_path):
    out = str(tmp_path / "run")
    run(config("env=Particle", "policy.features=env", "sweep.optimizer.lr=[0.05,0.2]", "iterations=4"), out)
    main([out, "episodes=3", "video=true", "video_seeds=1"])
    ev = json.load(open(os.path.join(out, "eval.json")))
    assert ev["checkpoint_iteration"] == 4 and ev["episodes"] == 3
    assert [(r["point"], r["seed"]) for r in ev["runs"]] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    for r in ev["runs"] + ev["points"]:
        for mode in ("stochastic", "greedy"):
            assert np.isfinite(r[mode]["return_mean"]) and 1 <= r[mode]["length_mean"] <= 50
    assert [p["optimizer.lr"] for p in ev["points"]] == [0.05, 0.2]
    assert sorted(os.listdir(os.path.join(out, "videos"))) == ["point0_seed0_greedy.gif", "point1_seed0_greedy.gif"]
    from PIL import Image, ImageSequence

    gif = Image.open(os.path.join(out, "videos", "point0_seed0_greedy.gif"))
    frames = [np.asarray(f.convert("RGB")) for f in ImageSequence.Iterator(gif)]
    assert len(frames) >= 2 and _distinct_frames(frames) >= 2


def test_cartpole_video_through_gymnasiums_renderer(tmp_path):
    out = str(tmp_path / "run")
    run(config("env=CartPole", "iterations=2", "num_seeds=1"), out)
    mp4 = importlib.util.find_spec("imageio_ffmpeg") is not None
    main([out, "episodes=2", "video=true", f"video_format={'mp4' if mp4 else 'gif'}", "video_policy=stochastic"])
    (name,) = os.listdir(os.path.join(out, "videos"))
    path = os.path.join(out, "videos", name)
    if mp4:
        import imageio.v2 as imageio

        frames = [f for f in imageio.get_reader(path)]  # list() would trust its len(), inf
    else:
        from PIL import Image, ImageSequence

        frames = [np.asarray(f.convert("RGB")) for f in ImageSequence.Iterator(Image.open(path))]
    assert frames[0].shape == (400, 600, 3) and len(frames) >= 8 and _distinct_frames(frames) >= 2


@pytest.mark.parametrize("options, words", [
    (["video_format=avi"], ["video_format", "gif, mp4"]),
    (["episodes=0"], ["episodes=0", ">= 1"]),
    (["episode=3"], ["episode", "episodes (default 10)"]),
    (["video=true"], ["env=Bandit", "Particle"]),
])
def test_bad_options_exit_2_with_the_valid_choices(tmp_path, capsys, options, words):
    out = str(tmp_path / "run")
    run(config("iterations=2", "checkpoint_every=0"), out)  # Bandit: nothing to draw
    with pytest.raises(SystemExit) as e:
        main([out, *options])
    err = capsys.readouterr().err
    assert e.value.code == 2 and all(w in err for w in words), err


def test_eval_does_not_need_tensorboard_for_a_run_that_logged_to_it(tmp_path, monkeypatch):
    """A run trained with logger.tensorboard=true evaluates where tensorboard is not installed:
    evaluation writes no TensorBoard events (its config is loaded with the logger off)."""
    out = str(tmp_path / "run")
    run(config("logger.tensorboard=true"), out)
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "tensorboard" else real(name, *a))
    with pytest.raises(ConfigError, match="tensorboard"):
        config("logger.tensorboard=true")  # training would need it
    assert evaluate(out, EvalConfig(episodes=2))["episodes"] == 2
