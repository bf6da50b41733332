"""`pgrun --help` and the config errors answer without importing JAX (issue 14, goal 1): nothing of
jax, flax, optax, orbax or scipy is imported on their way, read from the `python -X importtime` list
of the real console script; the PRNG that pgrun sets at import is still set once JAX loads."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import ROOT

HEAVY = ("jax", "jaxlib", "flax", "optax", "orbax", "scipy", "gymnasium", "numpy")


def imported(args: list[str]) -> tuple[subprocess.CompletedProcess, set[str]]:
    """Run `pgrun *args` under `-X importtime`; (the process, the top-level packages it imported)."""
    script = Path(sys.executable).parent / "pgrun"
    cmd = [str(script)] if script.exists() else ["-m", "pgrun.cli"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    p = subprocess.run([sys.executable, "-X", "importtime", *cmd, *args], capture_output=True, text=True,
                       env=env, cwd=str(ROOT), timeout=120)
    names = {m.group(1).split(".")[0] for m in re.finditer(r"^import time:.*\|\s*(\S+)\s*$", p.stderr, re.M)}
    return p, names


@pytest.mark.parametrize("args, rc, words", [
    (["--help"], 0, "Usage: pgrun"),
    (["estimator=nope"], 2, "is not a known option of the 'estimator' group"),
    (["gamma=1.5"], 2, "gamma=1.5 must lie in [0, 1]"),
    (["policy.activation=sigmoid"], 2, "valid choices: tanh, relu, elu, gelu, silu"),
    (["estimator.weight=gae", "estimator.baseline=batch_mean"], 2, "cannot combine with estimator.weight=gae"),
    (["env=Tokens", "env.task=nope"], 2, "env.task=nope is not valid"),
])
def test_help_and_config_errors_do_not_import_jax(args, rc, words):
    p, names = imported(args)
    out = p.stdout + "\n".join(line for line in p.stderr.splitlines() if not line.startswith("import time:"))
    assert p.returncode == rc, out[-2000:]
    assert words in out, out[-2000:]
    assert "pgrun" in names and "hydra" in names  # the list was read
    assert not names & set(HEAVY), f"pgrun {' '.join(args)} imported {sorted(names & set(HEAVY))}"


HYDRA_HELP = ("import sys, pgrun.cli as c; c.quick_help = lambda args: None; sys.argv = ['pgrun', *sys.argv[1:]]; "
              "c.main()")


@pytest.mark.parametrize("args", [["--help"], ["estimator=ppo", "policy.hidden=[8]", "-h"]])
def test_quick_help_prints_what_hydras_help_prints(args):
    """`pgrun --help` renders the help template from one compose; Hydra's own app help (the quick
    path switched off) prints the same text."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    quick, hydra = (subprocess.run([sys.executable, *cmd, *args], capture_output=True, text=True, env=env,
                                   cwd=str(ROOT), timeout=300) for cmd in (["-m", "pgrun.cli"], ["-c", HYDRA_HELP]))
    assert quick.returncode == hydra.returncode == 0, (quick.stderr + hydra.stderr)[-2000:]
    assert "Usage: pgrun" in quick.stdout and "hidden:\n" in quick.stdout
    assert quick.stdout == hydra.stdout


def test_a_run_still_imports_jax():
    """The check can fail: a command that builds the env does import JAX."""
    _, names = imported(["--cfg", "job"])
    assert "jax" not in names  # --cfg job only composes
    p, names = imported(["policy=gaussian_linear", "env=CartPole"])  # refused by the env's facts
    assert p.returncode == 2 and "jax" in names, p.stderr[-2000:]


def _prng(code: str, **env: str) -> str:
    full = {k: v for k, v in os.environ.items() if k != "JAX_DEFAULT_PRNG_IMPL"} | env | {"PYTHONPATH": str(ROOT)}
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=full, timeout=120)
    assert p.returncode == 0, p.stderr[-2000:]
    return p.stdout.split()


PRINT = "print(jax.config.jax_default_prng_impl, jax.random.key_impl(jax.random.key(0)))"


def test_pgrun_sets_rbg_when_jax_is_imported_after_it_or_before_it():
    assert _prng(f"import pgrun, sys; assert 'jax' not in sys.modules; import jax; {PRINT}") == ["rbg", "rbg"]
    assert _prng(f"import jax; import pgrun; {PRINT}") == ["rbg", "rbg"]
    assert _prng(f"import pgrun.config.validate; import jax.numpy; import jax; {PRINT}") == ["rbg", "rbg"]


def test_the_users_prng_wins_and_subprocesses_keep_jax_default():
    assert _prng(f"import pgrun, jax; {PRINT}", JAX_DEFAULT_PRNG_IMPL="threefry2x32") == ["threefry2x32"] * 2
    child = f"import subprocess, sys; subprocess.run([sys.executable, '-c', 'import jax; {PRINT}'])"
    assert _prng(f"import pgrun, jax; {PRINT}; {child}") == ["rbg", "rbg", "threefry2x32", "threefry2x32"]



def _python(code: str) -> str:
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=str(ROOT), timeout=120)
    assert p.returncode == 0, p.stderr[-3000:]
    return p.stdout.strip()


def test_importing_every_pgrun_module_runs_no_jax_op():
    """No work at import: a JAX op at module level (a constant made with jnp) would start JAX's
    backend and compile the op in every process that imports the module."""
    out = _python("import importlib, pkgutil, pgrun\n"
                  "for m in pkgutil.walk_packages(pgrun.__path__, 'pgrun.'):\n"
                  "    importlib.import_module(m.name)\n"
                  "import jax._src.xla_bridge as xb\n"
                  "print(len(xb._backends))")
    assert out == "0"


def test_a_runs_modules_do_not_import_scipy_stats():
    """scipy.stats takes 0.4 s to import; a run's confidence interval is NumPy (runner/stats.py).
    The lab, the report and pgrun-tune import it for their own statistics."""
    out = _python("import sys, pgrun.cli, pgrun.runner.loop, pgrun.runner.summary, pgrun.runner.stats, "
                  "pgrun.runner.evaluate, pgrun.train.build\n"
                  "print('scipy.stats' in sys.modules)")
    assert out == "False"
