"""Checkpoint, resume, nothing lost: resume == uninterrupted, SIGKILL / SIGINT mid-run, no clobbering."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
from helpers import DATA, make_config
from scale_helpers import ROOT, composed, config, pgrun, read_rows, without

from pgrun.errors import ConfigError
from pgrun.runner.checkpoint import latest_step, read_meta
from pgrun.runner.loop import run
from pgrun.runner.rundir import RunDirExists

# a critic (its params and optimizer state must survive too) and a two-point sweep
# constant step size: a decaying schedule is tied to `iterations`, which this test changes
RESUME = ["estimator=actor_critic", "sweep.optimizer.lr=[0.05,0.1]", "log_every=5", "checkpoint_every=10",
          "optimizer.schedule=constant"]


def test_resume_gives_the_uninterrupted_run(tmp_path):
    straight, cut = str(tmp_path / "straight"), str(tmp_path / "cut")
    full = run(config(*RESUME, "iterations=20"), straight)
    run(config(*RESUME, "iterations=15"), cut)  # checkpoints at 10 and 15 (the end)
    # as if killed after writing iteration 15's rows but before its checkpoint, mid-way through a row
    shutil.rmtree(os.path.join(cut, "checkpoints", "15"))
    with open(os.path.join(cut, "metrics.csv"), "a") as f:
        f.write("16,0,0,0.05,12")
    assert latest_step(cut) == 10
    with pytest.raises(ConfigError, match="gamma"):
        run(config(*RESUME, "iterations=20", "gamma=0.5", f"resume={cut}"), str(tmp_path / "ignored"))
    resumed = run(config(*RESUME, "iterations=20", f"resume={cut}"), str(tmp_path / "ignored"))
    a, b = read_rows(os.path.join(straight, "metrics.csv")), read_rows(os.path.join(cut, "metrics.csv"))
    assert len(a) == 20 * 4 and without(a, "wall_s") == without(b, "wall_s")
    assert resumed["resumed_from"] == 10 and resumed["iterations"] == 20
    for key in ("final_return_mean", "final_return_ci95", "points", "env_steps", "best_point"):
        assert resumed[key] == full[key]
    assert latest_step(cut) == 20 and read_meta(cut)["config"]["iterations"] == 20



# batch reuse carries TrainState.extra (ReuseState) across iterations: the envs' carry in steps
# mode (mid-episode states, time steps, the last finished episodes' figures) and kl_penalty's β
REUSE = ["env=CartPole", "policy.hidden=[8]", "estimator.critic_hidden=[8]", "num_seeds=2", "log_every=2",
         "num_envs=4", "num_steps=16", "optimizer.schedule=constant", "checkpoint_every=2", "progress=false"]


# kl_penalty carries both β and the env; ppo and trpo are slow (cold-cache CI time)
@pytest.mark.parametrize("estimator", [pytest.param("ppo", marks=pytest.mark.slow),
                                       pytest.param("trpo", marks=pytest.mark.slow), "kl_penalty"])
def test_resume_of_a_batch_reusing_run_gives_the_uninterrupted_run(tmp_path, estimator):
    """estimator.rollout=steps: a resume that restarted the envs or reset β would change every row after
    the checkpoint (β moves from its initial 1.0 every iteration: checked below, so the test can fail)."""
    args = [f"estimator={estimator}", "estimator.rollout=steps", *REUSE]
    straight, cut = str(tmp_path / "straight"), str(tmp_path / "cut")
    run(make_config(*args, "iterations=6"), straight)
    run(make_config(*args, "iterations=2"), cut)
    resumed = run(make_config(*args, "iterations=6", f"resume={cut}"), str(tmp_path / "ignored"))
    assert resumed["resumed_from"] == 2
    a, b = read_rows(os.path.join(straight, "metrics.csv")), read_rows(os.path.join(cut, "metrics.csv"))
    assert len(a) == 6 * 2 and without(a, "wall_s") == without(b, "wall_s")
    if estimator == "kl_penalty":
        assert all(float(r["kl_beta"]) != 1.0 for r in a if int(r["iteration"]) == 3)


def test_resume_refuses_to_stretch_a_decaying_schedule(tmp_path):
    cut = str(tmp_path / "cut")
    run(config("estimator=reinforce", "optimizer.schedule=linear", "iterations=4", "log_every=2"), cut)
    with pytest.raises(ConfigError, match="schedule"):
        run(config("estimator=reinforce", "optimizer.schedule=linear", "iterations=8", "log_every=2",
                   f"resume={cut}"), str(tmp_path / "ignored"))


def test_resume_command_line_may_repeat_the_runs_own_values(tmp_path):
    """The original command line plus resume= works (its values are the run's own); a changed
    non-resumable value is refused, naming the key."""
    from pgrun.runner.rundir import resume_config
    cut = str(tmp_path / "cut")
    original = ["num_seeds=2", "estimator=reinforce", "optimizer.schedule=constant", "iterations=4"]
    run(config(*original), cut)
    again = [*original[:-1], "iterations=6", f"resume={cut}"]
    cfg = resume_config(composed(*again), again)
    assert cfg.iterations == 6 and cfg.num_seeds == 2 and cfg.estimator.name == "reinforce"
    for changed, key in (("num_seeds=3", "num_seeds"), ("estimator=baseline", "estimator")):
        bad = [changed, "iterations=6", f"resume={cut}"]
        with pytest.raises(ConfigError, match=f"also sets {key}"):
            resume_config(composed(*bad), bad)


def test_refuses_another_runs_directory(tmp_path):
    out = str(tmp_path / "run")
    run(config(), out)
    before = {f: hashlib.sha256(open(os.path.join(out, f), "rb").read()).hexdigest()
              for f in ("metrics.csv", "summary.json")}
    with pytest.raises(RunDirExists, match="overwrite=true"):
        run(config("iterations=2"), out)
    assert before == {f: hashlib.sha256(open(os.path.join(out, f), "rb").read()).hexdigest() for f in before}
    run(config("iterations=2", "overwrite=true"), out)
    assert len(read_rows(os.path.join(out, "metrics.csv"))) == 2 * 2 and latest_step(out) == 2


def test_cli_refuses_another_runs_directory_and_leaves_it_untouched(tmp_path):
    out = tmp_path / "run"
    (out / ".hydra").mkdir(parents=True)
    files = {"metrics.csv": "iteration,seed\n1,0\n", ".hydra/config.yaml": "seed: 7\n"}
    for name, text in files.items():
        (out / name).write_text(text)
    p = pgrun("env=Bandit", "policy=softmax_linear", f"hydra.run.dir={out}", timeout=120)
    assert p.returncode == 2 and "overwrite=true" in p.stderr and "resume=" in p.stderr
    assert {n: (out / n).read_text() for n in files} == files


def _start(out, *args):
    e = {**os.environ, "PYTHONPATH": ROOT}
    cmd = [sys.executable, "-m", "pgrun.cli", "env=Bandit", "policy=softmax_linear", "num_seeds=2",
           "episodes_per_iteration=4", "progress=false", f"hydra.run.dir={out}", *args]
    return subprocess.Popen(cmd, cwd=ROOT, env=e, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_rows(path, n, proc, timeout=120):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if os.path.exists(path) and sum(1 for _ in open(path)) > n:
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    raise TimeoutError(path)


def _check_whole(path, log_every, runs):
    with open(path) as f:
        text = f.read()
    lines = text.split("\n")
    assert text.endswith("\n") and lines[0].startswith("iteration,seed")
    width = len(lines[0].split(","))
    assert all(len(ln.split(",")) == width for ln in lines[1:-1])
    rows = read_rows(path)
    iters = [int(r["iteration"]) for r in rows]
    assert iters == sorted(iters) and len(rows) % (log_every * runs) == 0  # whole chunks only
    return rows


def test_sigkill_mid_run_leaves_whole_rows_and_resumes(tmp_path):
    out = tmp_path / "run"
    proc = _start(out, "iterations=10000000", "optimizer.schedule=constant", "log_every=20", "checkpoint_every=100")
    _wait_for_rows(out / "metrics.csv", 600, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    rows = _check_whole(out / "metrics.csv", 20, 2)
    ckpt = latest_step(str(out))
    assert ckpt is not None and ckpt % 100 == 0 and ckpt <= int(rows[-1]["iteration"])
    p = pgrun(f"resume={out}", f"iterations={ckpt + 40}", "hydra.run.dir=" + str(tmp_path / "resume"), timeout=120)
    assert p.returncode == 0, p.stderr
    rows = read_rows(out / "metrics.csv")
    assert [int(r["iteration"]) for r in rows] == [i for i in range(1, ckpt + 41) for _ in range(2)]


@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_sigint_or_sigterm_flushes_checkpoints_and_exits(tmp_path, sig, code):
    """Ctrl-C and SIGTERM (kill, SLURM preemption) both stop at a chunk boundary, write the
    chunk, checkpoint, and exit 130 / 143 (128 + signal number)."""
    out = tmp_path / "run"
    proc = _start(out, "iterations=10000000", "log_every=20", "checkpoint_every=0")
    _wait_for_rows(out / "metrics.csv", 200, proc)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code and "resume=" in err, err
    rows = _check_whole(out / "metrics.csv", 20, 2)

    summary = json.load(open(out / "summary.json"))
    assert summary["status"] == "interrupted" and summary["iterations"] == int(rows[-1]["iteration"])
    assert latest_step(str(out)) == int(rows[-1]["iteration"])


# tests/data/kl_penalty_run_v0 was written by pgrun before TrainState.hp and .extra became
# NamedTuples (checkpoint leaves `.hp['gamma']`, `.extra['kl_beta']`, steps-mode env carry).
OLD_RUN = str(DATA / "kl_penalty_run_v0")
OLD_ARGS = ["estimator=kl_penalty", "env=CartPole", "policy.hidden=[8]", "estimator.critic_hidden=[8]",
            "num_seeds=2", "log_every=2", "num_envs=4", "num_steps=16", "optimizer.schedule=constant",
            "progress=false"]


def test_a_checkpoint_from_before_the_typed_state_resumes_exactly(tmp_path):
    cut, straight = str(tmp_path / "cut"), str(tmp_path / "straight")
    shutil.copytree(OLD_RUN, cut)
    assert "hp['gamma']" in "".join(read_meta(cut)["leaves"])  # really the old format
    resumed = run(make_config(*OLD_ARGS, "iterations=6", f"resume={cut}"), str(tmp_path / "ignored"))
    run(make_config(*OLD_ARGS, "iterations=6"), straight)
    a, b = read_rows(os.path.join(straight, "metrics.csv")), read_rows(os.path.join(cut, "metrics.csv"))
    assert resumed["resumed_from"] == 4 and len(a) == 6 * 2
    # iterations 1-4 of `b` are the recorded file's: where this machine's straight run reproduces them
    # bit for bit (the same XLA on the same kind of CPU), the resumed 5-6 must match bit for bit too
    if without(a, "wall_s")[:8] == without(b, "wall_s")[:8]:
        assert without(a, "wall_s") == without(b, "wall_s")
    else:  # another XLA, or XLA on another CPU (its vector width), rounds some float reductions
        # differently (value_loss 20.903162 vs 20.903164): the same rows to float32 rounding, counts exactly
        assert [list(r) for r in a] == [list(r) for r in b]
        for ra, rb in zip(without(a, "wall_s"), without(b, "wall_s")):
            for k in ra:
                if ra[k] in ("", "nan") or rb[k] in ("", "nan") or k in ("iteration", "seed", "env_steps", "episodes"):
                    assert ra[k] == rb[k], (k, ra, rb)
                else:
                    assert float(ra[k]) == pytest.approx(float(rb[k]), rel=1e-4, abs=1e-5), (k, ra, rb)
