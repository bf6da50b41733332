"""A refused command leaves no directory behind (issue 13): pgrun composes and checks the config of
every job before Hydra makes the run directory; a job refused after that (a check the pre-check
cannot make) removes the directory Hydra just made for it, and never a directory that was there."""

from __future__ import annotations

import os

from cli_helpers import TINY, run_cli, tree

# pgrun's `main` with the pre-check switched off: what a job meets when an error escapes it
WITHOUT_PRECHECK = ("import sys, pgrun.cli as c; c.precheck = lambda args: None; "
                    "sys.argv = ['pgrun', *sys.argv[1:]]; c.main()")


def test_a_multirun_with_one_bad_job_leaves_no_directory(tmp_path):
    """The second job's error needs the env (a Gaussian policy on CartPole's discrete actions)."""
    p = run_cli("-m", "policy=mlp,gaussian_linear", "env=CartPole", "iterations=1", "num_seeds=1", cwd=tmp_path)
    assert p.returncode == 2 and "policy=gaussian_linear needs a continuous action space" in p.stderr, p.stderr[-3000:]
    assert tree(tmp_path) == []  # not even the first, valid job ran: no multirun/ nor outputs/


def test_resume_of_a_directory_without_checkpoint_touches_nothing(tmp_path):
    run_dir = tmp_path / "old"
    run_dir.mkdir()
    (run_dir / "metrics.csv").write_text("iteration,seed\n1,0\n")
    before = tree(tmp_path)
    p = run_cli(f"resume={run_dir}", cwd=tmp_path)
    assert p.returncode == 2 and "no checkpoint" in p.stderr, p.stderr[-3000:]
    assert tree(tmp_path) == before and (run_dir / "metrics.csv").read_text() == "iteration,seed\n1,0\n"


def test_a_job_refused_after_hydra_made_its_directory_removes_it(tmp_path):
    p = run_cli("-c", WITHOUT_PRECHECK, *TINY, "gamma=1.5", cwd=tmp_path, module="")
    assert p.returncode == 2 and "gamma=1.5" in p.stderr, p.stderr[-3000:]
    made = [t for t in tree(tmp_path) if t.count(os.sep) == 2]  # outputs/<date>/<time>
    assert made == [], tree(tmp_path)
    assert tree(tmp_path)[0] == "outputs"  # power: Hydra did make a directory for the job


def test_a_directory_that_was_there_is_kept(tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    os.utime(mine, (1e9, 1e9))  # made long before the command
    p = run_cli("-c", WITHOUT_PRECHECK, *TINY, "gamma=1.5", f"hydra.run.dir={mine}", cwd=tmp_path, module="")
    assert p.returncode == 2 and "gamma=1.5" in p.stderr, p.stderr[-3000:]
    assert mine.is_dir() and not (mine / ".hydra").exists()
