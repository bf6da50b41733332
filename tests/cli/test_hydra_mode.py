"""A single run composes its config twice, not three times: the pre-check's compose gives Hydra
the `hydra.mode` it would otherwise compose the whole config again to read (cli.hydra_mode_known);
a multirun, and a config that sets hydra.mode, behave as Hydra makes them."""

from __future__ import annotations

import json

from cli_helpers import TINY, run_cli

# pgrun's `main`, counting Hydra's composes (Hydra.compose_config: the pre-check's `hydra.compose`,
# Hydra's get_mode and its run each call it once)
COUNTING = ("import sys, json, atexit; from hydra._internal.hydra import Hydra; n = []; own = Hydra.compose_config\n"
            "def counted(self, *a, **k):\n    n.append(1); return own(self, *a, **k)\n"
            "Hydra.compose_config = counted\n"
            "atexit.register(lambda: print(json.dumps({'composes': len(n)}), file=sys.stderr))\n"
            "import pgrun.cli as c; sys.argv = ['pgrun', *sys.argv[1:]]; c.main()")


def composes(stderr: str) -> int:
    return json.loads(stderr.strip().splitlines()[-1])["composes"]


def test_a_single_run_composes_twice(tmp_path):
    p = run_cli("-c", COUNTING, *TINY, f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path, module="")
    assert p.returncode == 0, p.stderr[-3000:]
    assert composes(p.stderr) == 2
    assert (tmp_path / "run" / "metrics.csv").is_file()


def test_a_multirun_still_asks_hydra(tmp_path):
    """Hydra reads a multirun's mode itself (the pre-check does not answer for it): one pre-check
    compose per job, get_mode's and the sweep's (the jobs' own go through Hydra's config loader)."""
    p = run_cli("-c", COUNTING, "-m", *TINY, "seed=0,1", f"hydra.sweep.dir={tmp_path / 'sweep'}", cwd=tmp_path,
                module="")
    assert p.returncode == 0, p.stderr[-3000:]
    assert composes(p.stderr) == 4
    assert sorted(d.name for d in (tmp_path / "sweep").iterdir() if d.is_dir()) == ["0", "1"]


def test_hydra_mode_multirun_on_the_command_line_still_sweeps(tmp_path):
    """`hydra.mode=MULTIRUN` without -m makes Hydra sweep (its documented behaviour): the mode the
    pre-check composed is the one Hydra gets (a single run's None is checked by the tests above)."""
    p = run_cli(*TINY, "hydra.mode=MULTIRUN", f"hydra.sweep.dir={tmp_path / 'sweep'}",
                f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert p.returncode == 0, p.stderr[-3000:]
    assert (tmp_path / "sweep" / "0" / "metrics.csv").is_file() and not (tmp_path / "run").exists()


def test_hydra_mode_known_restores_hydra():
    from hydra._internal.hydra import Hydra

    from pgrun.cli import UNKNOWN, hydra_mode_known

    own = Hydra.get_mode
    with hydra_mode_known(None):
        assert Hydra.get_mode(None, "config", []) is None  # type: ignore[arg-type]
    assert Hydra.get_mode is own
    with hydra_mode_known(UNKNOWN):
        assert Hydra.get_mode is own
