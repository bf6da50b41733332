"""Bad command lines get pgrun's one-paragraph error and exit status 2 (issue 13): a value of the
wrong type for a key, a misspelt group option (with a "did you mean"), and an optional feature
whose package is not installed (naming the pyproject extra that installs it). None compiles
anything or leaves a directory behind."""

from __future__ import annotations

import pytest
from cli_helpers import TINY, run_cli, tree

from pgrun.cli import precheck, rewrite_argv
from pgrun.errors import ConfigError


def _refused(p, tmp_path, *words):
    err = p.stderr
    assert p.returncode == 2, err[-3000:]
    lines = [ln for ln in err.splitlines() if ln.strip() and "Warning" not in ln and "warn" not in ln]
    assert len(lines) == 1 and lines[0].startswith("pgrun: config error: "), err[-3000:]  # one paragraph
    assert "Traceback" not in err and "HYDRA_FULL_ERROR" not in err
    for w in words:
        assert w in err, (w, err)
    assert tree(tmp_path) == [], tree(tmp_path)  # run from tmp_path: no outputs/ nor multirun/


TYPE_ERRORS = [
    pytest.param(["iterations=abc"], ["iterations=abc", "an integer"], id="int"),
    pytest.param(["gamma=high"], ["gamma=high", "a number"], id="float"),
    pytest.param(["progress=maybe"], ["progress=maybe", "true or false"], id="bool"),
    pytest.param(["policy.hidden=abc"], ["policy.hidden=abc", "a list of integers"], id="list"),
    pytest.param(["env.max_episode_steps=ten"], ["env.max_episode_steps=ten", "an integer or null"], id="optional"),
    pytest.param(["-m", "iterations=2,abc"], ["iterations=abc", "an integer"], id="multirun-item"),
    pytest.param(["policy.hidden=[a]"], ["policy.hidden=[a]", "a list of integers"], id="list-item"),
    # not type errors, but Hydra's other composition failures, also in one paragraph
    pytest.param(["iterations=[1,"], ["iterations=[1,", "is not a valid override"], id="unparsable"),
    pytest.param(["-m", "hydra/launcher=jobib", "seed=0,1"],
                 ["hydra/launcher=jobib", "Did you mean hydra/launcher=joblib?", "basic"], id="hydra-group"),
]


@pytest.mark.parametrize("args,words", TYPE_ERRORS)
def test_a_value_of_the_wrong_type_names_key_value_and_type(args, words):
    """In-process (the command line below checks the same in a subprocess): precheck composes first."""
    with pytest.raises(ConfigError) as e:
        precheck(rewrite_argv(args))
    assert "\n" not in str(e.value)
    for w in words:
        assert w in str(e.value), (w, str(e.value))


def test_a_type_error_on_the_command_line_exits_2_in_one_paragraph(tmp_path):
    _refused(run_cli("-m", "seed=0,1", "iterations=abc", cwd=tmp_path), tmp_path, "iterations=abc", "an integer")


GROUP_TYPOS = [
    pytest.param("env=cartpole", "Did you mean env=CartPole?", id="case"),
    pytest.param("estimator=reinforc", "Did you mean estimator=reinforce?", id="typo"),
    pytest.param("policy=mpl", "Did you mean policy=mlp?", id="swap"),
    pytest.param("+experiment=cartpole_actorcritic", "Did you mean experiment=cartpole_actor_critic?", id="append"),
    pytest.param("env=CartPole,Acrobt", "Did you mean env=Acrobot?", id="multirun-item"),
]


@pytest.mark.parametrize("arg,hint", GROUP_TYPOS)
def test_a_misspelt_group_option_gets_did_you_mean(arg, hint):
    with pytest.raises(SystemExit) as e:
        rewrite_argv([arg])
    assert hint in str(e.value.code) and "Valid choices:" in str(e.value.code)


def test_an_appended_unknown_key_is_refused_like_a_plain_one():
    with pytest.raises(SystemExit) as e:
        rewrite_argv(["+itrations=5"])
    assert "itrations is not a config key" in str(e.value.code) and "Did you mean iterations?" in str(e.value.code)
    assert rewrite_argv(["+env.params.gravity=12"]) == ["+env.params.gravity=12"]  # a dict takes any key


def test_no_did_you_mean_for_a_name_like_no_option():
    with pytest.raises(SystemExit) as e:
        rewrite_argv(["env=Zzzzzz"])
    assert "Did you mean" not in str(e.value.code)


def test_a_misspelt_group_option_on_the_command_line_exits_2(tmp_path):
    _refused(run_cli("estimator=reinforc", cwd=tmp_path), tmp_path, "Did you mean estimator=reinforce?")


# each optional feature without its package: (command line, modules made unimportable, words)
EXTRAS = [
    pytest.param(["-m", "hydra/launcher=joblib", "seed=0,1", *TINY], ("hydra_plugins.hydra_joblib_launcher",),
                 ["hydra/launcher=joblib", "hydra-joblib-launcher", "pip install 'pgrun[launchers]'"], id="joblib"),
    pytest.param(["-m", "hydra/launcher=ray", "seed=0,1", *TINY], ("ray",),
                 ["hydra/launcher=ray", "Ray", "pip install 'pgrun[ray]'"], id="ray"),
    pytest.param(["logger.tensorboard=true", *TINY], ("tensorboard",),
                 ["logger.tensorboard=true", "pip install 'pgrun[tensorboard]'", "logger.tensorboard=false"],
                 id="tensorboard"),
    pytest.param(["logger.wandb=true", *TINY], ("wandb",),
                 ["logger.wandb=true", "pip install 'pgrun[wandb]'", "logger.wandb=false"], id="wandb"),
    pytest.param(["logger.trackio=true", *TINY], ("trackio",),
                 ["logger.trackio=true", "pip install 'pgrun[trackio]'", "logger.trackio=false"], id="trackio"),
    pytest.param(["env=gym:LunarLander-v3", "policy=mlp", "iterations=1"], ("Box2D",),
                 ["env=gym:LunarLander-v3", "Box2D", "pip install 'pgrun[box2d]'"], id="box2d"),
]


@pytest.mark.parametrize("args,block,words", EXTRAS)
def test_a_missing_optional_package_names_the_extra(args, block, words, tmp_path):
    _refused(run_cli(*args, cwd=tmp_path, block=block), tmp_path, *words)


def test_mp4_video_without_imageio_ffmpeg_names_the_video_extra(tmp_path):
    """pgrun-eval checks its options before it opens the run: the directory need not exist."""
    p = run_cli(str(tmp_path / "no-run"), "video=true", "video_format=mp4", cwd=tmp_path,
                module="pgrun.runner.evaluate", block=("imageio_ffmpeg",))
    assert p.returncode == 2, p.stderr[-3000:]
    assert "pip install 'pgrun[video]'" in p.stderr and "video_format=gif" in p.stderr
    assert "Traceback" not in p.stderr and tree(tmp_path) == []


def test_the_block_shim_really_blocks(tmp_path):
    """Power of the tests above: with the module blocked, importing it fails in the subprocess."""
    p = run_cli("-c", "import tensorboard", cwd=tmp_path, module="", block=("tensorboard",))
    assert p.returncode != 0 and "ImportError" in p.stderr or "ModuleNotFoundError" in p.stderr, p.stderr
