"""env=gym:<id> (gymnasium stepped on the host): checkpoints, exact resume, Ctrl-C, pgrun-eval.

Before, host runs wrote no checkpoint: Ctrl-C said "continue with resume=..." and both
`resume=` and `pgrun-eval` then failed with "no checkpoint".
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from helpers import make_config
from scale_helpers import ROOT, pgrun, read_rows, without

from pgrun.runner.checkpoint import latest_step, read_meta
from pgrun.runner.loop import run

HOST = ["env=gym:CartPole-v1", "env.max_episode_steps=30", "num_seeds=2", "episodes_per_iteration=3",
        "policy.hidden=[8]", "estimator=actor_critic", "estimator.critic_hidden=[8]",
        "optimizer.schedule=constant", "progress=false"]


def test_host_resume_gives_the_uninterrupted_run(tmp_path):
    """Run 7 iterations; run 4 (checkpoints at 2 and 4), resume to 7: the same metrics.csv but
    wall_s, and the same summary figures. The env copies' generators travel in the checkpoint:
    without them the resumed iterations would reset the envs to other initial states."""
    straight, cut = str(tmp_path / "straight"), str(tmp_path / "cut")
    args = [*HOST, "log_every=2", "checkpoint_every=2"]
    full = run(make_config(*args, "iterations=7"), straight)
    run(make_config(*args, "iterations=4"), cut)
    assert latest_step(cut) == 4
    rng = read_meta(cut)["host_env"]["rng"]
    assert len(rng) == 2 * 3 and len({str(g["state"]) for g in rng}) == 6  # one generator per copy
    resumed = run(make_config(*args, "iterations=7", f"resume={cut}"), str(tmp_path / "ignored"))
    a, b = read_rows(os.path.join(straight, "metrics.csv")), read_rows(os.path.join(cut, "metrics.csv"))
    assert len(a) == 7 * 2 and without(a, "wall_s") == without(b, "wall_s")
    assert resumed["resumed_from"] == 4 and resumed["iterations"] == 7 and resumed["status"] == "completed"
    for key in ("final_return_mean", "final_return_ci95", "final_return_per_seed", "env_steps"):
        assert resumed[key] == full[key], key
    assert latest_step(cut) == 7


def _wait_for_rows(path, n, proc, timeout=240):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if os.path.exists(path) and sum(1 for _ in open(path)) > n:
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    raise TimeoutError(path)


@pytest.mark.slow  # cold-cache CI time; the fast suite keeps the in-process host resume test
def test_host_ctrl_c_then_resume_then_eval_with_video(tmp_path):
    """The user's path on the CLI: Ctrl-C a host run (exit 130, a checkpoint at the last
    iteration written), `pgrun resume=<run dir> iterations=k+3` (the metrics of an uninterrupted
    k+3-iteration run), then `pgrun-eval <run dir> video=true` (eval.json and a GIF)."""
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "pgrun.cli", *HOST, "iterations=100000", "log_every=1", "checkpoint_every=0",
           f"hydra.run.dir={out}"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    _wait_for_rows(out / "metrics.csv", 2 * 4, proc)  # 4 iterations x 2 seeds written
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "resume=" in err, err
    rows = read_rows(out / "metrics.csv")
    k = int(rows[-1]["iteration"])
    assert len(rows) == 2 * k and latest_step(str(out)) == k  # every iteration written, checkpointed
    assert json.load(open(out / "summary.json"))["status"] == "interrupted"

    p = pgrun(f"resume={out}", f"iterations={k + 3}", f"hydra.run.dir={tmp_path / 'resume'}", timeout=240)
    assert p.returncode == 0, p.stderr
    straight = str(tmp_path / "straight")
    run(make_config(*HOST, f"iterations={k + 3}", "log_every=1", "checkpoint_every=0"), straight)
    a, b = read_rows(os.path.join(straight, "metrics.csv")), read_rows(out / "metrics.csv")
    assert len(a) == 2 * (k + 3) and without(a, "wall_s") == without(b, "wall_s")

    e = subprocess.run([sys.executable, "-m", "pgrun.runner.evaluate", str(out), "episodes=2", "video=true"],
                       cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT}, capture_output=True, text=True,
                       timeout=240)
    assert e.returncode == 0, e.stderr
    ev = json.load(open(out / "eval.json"))
    assert ev["checkpoint_iteration"] == k + 3 and ev["env"] == "gym:CartPole-v1"
    assert [(r["point"], r["seed"]) for r in ev["runs"]] == [(0, 0), (0, 1)]
    for r in ev["runs"]:
        for mode in ("stochastic", "greedy"):  # CartPole: +1 per step, so return == length <= T
            assert 1 <= r[mode]["return_mean"] == r[mode]["length_mean"] <= 30
    from PIL import Image, ImageSequence

    (name,) = os.listdir(out / "videos")
    assert name == "point0_seed0_greedy.gif"
    frames = [np.asarray(f.convert("RGB")) for f in ImageSequence.Iterator(Image.open(out / "videos" / name))]
    assert frames[0].shape == (400, 600, 3) and len({f.tobytes() for f in frames}) >= 2


def test_a_vmapped_sweep_with_a_host_env_is_a_config_error():
    """The host loop trains one run of num_seeds seeds; it used to ignore sweep.<key> silently."""
    from pgrun.errors import ConfigError
    from pgrun.train.build import build

    with pytest.raises(ConfigError, match=r"sweep\.optimizer\.lr.*gym:CartPole-v1.*pgrun -m"):
        build(make_config(*HOST, "sweep.optimizer.lr=[0.01,0.1]"))


@pytest.mark.slow  # starts forkserver workers: ~1 min on 2 loaded cores
def test_ctrl_c_in_a_terminal_stops_an_async_run_cleanly(tmp_path):
    """A terminal's Ctrl-C signals the whole process group, async env workers included: they
    ignore it, and the run stops after its iteration with a checkpoint (exit 130), instead of
    crashing on a dead worker."""
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "pgrun.cli", *HOST, "num_seeds=1", "episodes_per_iteration=2",
           "env.vectorization_mode=async", "iterations=100000", "log_every=1", "checkpoint_every=0",
           f"hydra.run.dir={out}"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    _wait_for_rows(out / "metrics.csv", 3, proc)
    os.killpg(proc.pid, signal.SIGINT)  # as the terminal does: the process group
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "resume=" in err, err
    rows = read_rows(out / "metrics.csv")
    assert latest_step(str(out)) == int(rows[-1]["iteration"]) == len(rows)
