"""pgrun-eval video=true for gymnax envs (pgrun/runner/video.py): gymnax 1.0.1 has no rgb_array
renderer, so image / grid observations are drawn cell by cell (MinAtar's display rule), and envs
with a vector observation are refused with the reason.

The frame rule is checked without gymnax; the end-to-end tests need the optional `gymnax` extra
(not in the test extra): marked `gymnax`, they skip without it and run in .ci/run's gymnax step
(helpers.optional_module, as tests/envs/test_gymnax.py)."""

from __future__ import annotations

import os

import numpy as np
import pytest
from helpers import optional_module

from pgrun.runner.video import PALETTE, observation_frame


def test_a_cell_takes_the_colour_of_its_highest_set_channel():
    obs = np.zeros((2, 3, 4), bool)
    obs[0, 0, 1] = True                 # channel 1 alone
    obs[1, 2, [0, 3]] = True            # channels 0 and 3: 3 is drawn
    obs[0, 2, 0] = True                 # channel 0 alone
    f = observation_frame(obs, cell_px=2)
    assert f.shape == (4, 6, 3) and f.dtype == np.uint8
    cells = f[::2, ::2]
    assert (cells[0, 0] == PALETTE[2]).all() and (cells[1, 2] == PALETTE[4]).all() and (cells[0, 2] == PALETTE[1]).all()
    for i, j in [(0, 1), (1, 0), (1, 1)]:
        assert (cells[i, j] == 0).all()  # nothing set: black
    assert (f[0:2, 0:2] == PALETTE[2]).all()  # each cell is a full cell_px x cell_px block


def test_a_grid_observation_is_drawn_in_grey_levels():
    obs = np.zeros((3, 3), np.float32)
    obs[2, 1] = 1.0
    obs[0, 0] = 0.5
    f = observation_frame(obs, cell_px=1)
    assert f.shape == (3, 3, 3)
    assert (f[2, 1] == 255).all() and (f[0, 0] == 127).all() and f.sum() == 3 * (255 + 127)


@pytest.mark.gymnax
def test_breakout_gif_shows_the_bricks_and_the_paddle(tmp_path):
    optional_module("gymnax")
    from helpers import make_config
    from PIL import Image, ImageSequence

    from pgrun.runner.evaluate import main
    from pgrun.runner.loop import run

    out = str(tmp_path / "run")
    run(make_config("env=gymnax:Breakout-MinAtar", "policy=mlp", "policy.hidden=[8]", "estimator=reward_to_go",
                    "num_seeds=1", "iterations=1", "episodes_per_iteration=2", "log_every=1", "progress=false",
                    "+env.params.max_steps_in_episode=20"), out)
    main([out, "episodes=1", "video=true", "video_policy=stochastic"])
    gif = Image.open(os.path.join(out, "videos", "point0_seed0_stochastic.gif"))
    frames = [np.asarray(f.convert("RGB")) for f in ImageSequence.Iterator(gif)]
    assert 2 <= len(frames) <= 21 and frames[0].shape == (160, 160, 3)
    cells = frames[0][8::16, 8::16]  # the centre pixel of each 16 px cell: [10, 10, 3]
    brick, paddle = PALETTE[1 + 3], PALETTE[1 + 0]  # Breakout's channels: 0 paddle, 1 ball, 2 trail, 3 brick
    assert (cells[1:3] == brick).all()  # MinAtar Breakout starts with bricks in rows 1-3 (the ball in row 3)
    assert [j for j in range(10) if (cells[9, j] == paddle).all()] == [4]  # the paddle starts at column 4
    assert (cells[4:9] == 0).all()  # nothing between the bricks and the paddle at the start
    assert len({f.tobytes() for f in frames}) >= 2  # the ball moves


@pytest.mark.gymnax
@pytest.mark.parametrize("gymnax_id", ["UmbrellaChain-bsuite", "CartPole-v1"])
def test_a_vector_observation_is_refused_with_the_reason(gymnax_id):
    optional_module("gymnax")
    from pgrun.envs.registry import make_env
    from pgrun.errors import ConfigError
    from pgrun.runner.video import check_renderable

    with pytest.raises(ConfigError) as e:
        check_renderable(make_env(f"gymnax:{gymnax_id}"))
    assert "no rgb_array renderer" in str(e.value) and "vector of shape" in str(e.value)
    assert "Breakout" not in str(e.value) or "MinAtar" in str(e.value)


@pytest.mark.gymnax
def test_deep_sea_grid_is_renderable():
    optional_module("gymnax")
    from pgrun.envs.registry import make_env
    from pgrun.runner.video import check_renderable

    check_renderable(make_env("gymnax:DeepSea-bsuite"))  # no error: its [8, 8] grid is drawn
